"""Running with nobody watching: `watch`, `schedule`, and the `config` they read."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from adbvoice import errors
from adbvoice.cancel import CancelToken
from adbvoice.commands.backup import signals_cancel
from adbvoice.commands.common import (
    AdbKeyOpt,
    ArchiveArg,
    IncludeAudioOpt,
    LayoutOpt,
    LogFileOpt,
    NoIncludeAudioOpt,
    PhoneOpt,
    SerialOpt,
    TcpOpt,
    VerboseOpt,
    WifiOpt,
    call,
    either,
    fail,
)
from adbvoice.commands.notices import NoNotifyAlwaysOpt, NoNotifyOpt, NotifyAlwaysOpt, NotifyOpt, notifier, with_prompts
from adbvoice.commands.progress import EventPrinter
from adbvoice.display import printable
from adbvoice.unattended.runlog import RunLog
from adbvoice.unattended.settings import SETTINGS, backup_config, config_path, resolve, wifi_choice

app = typer.Typer()
config_app = typer.Typer(help="The config file: where it is, and the settings every command resolves.")
app.add_typer(config_app, name="config")


@app.command()
def watch(
    archive: ArchiveArg = None,
    tcp: TcpOpt = None,
    wifi: WifiOpt = False,
    phone: PhoneOpt = None,
    interval: Annotated[
        float, typer.Option(metavar="SECONDS", min=0.05, help="How often to look for phones.")
    ] = 5.0,
    log_file: LogFileOpt = None,
    notify: NotifyOpt = False,
    no_notify: NoNotifyOpt = False,
    notify_always: NotifyAlwaysOpt = False,
    no_notify_always: NoNotifyAlwaysOpt = False,
    serial: SerialOpt = None,
    adb_key: AdbKeyOpt = None,
    include_audio: IncludeAudioOpt = False,
    no_include_audio: NoIncludeAudioOpt = False,
    layout: LayoutOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Wait for phones and back each one up once every time it is plugged in (or, with
    --tcp or --wifi, every time it becomes reachable); stop with Ctrl-C.

    Example: adbvoice watch --tcp 192.168.1.20, or adbvoice watch --wifi
    """
    from adbvoice.unattended.watch import Result, Watcher

    flags = call(verbose, lambda: dict(
        archive=archive, tcp=tcp, log_file=log_file, serial=serial, adb_key=adb_key, layout=layout,
        notify=either(notify, no_notify, "notify"), notify_always=either(notify_always, no_notify_always, "notify-always"),
        include_audio=either(include_audio, no_include_audio, "include-audio"), wifi=wifi or None, phone=phone,
    ))
    settings = call(verbose, lambda: resolve(flags))
    config = call(verbose, lambda: backup_config(settings))
    choice = call(verbose, lambda: wifi_choice(settings))
    log = call(verbose, lambda: RunLog.open(settings["log_file"])) if settings["log_file"] else None
    printer = EventPrinter(quiet=False, verbose=verbose)
    notices = notifier(settings, log, quiet=False)

    def on_result(result: Result) -> None:
        printer.close()  # the finished backup's progress bar
        if notices is not None:
            notices.backup_ended(result.key, result.report, result.error, unplug=config.connect.tcp is None)
        when = time.strftime("%Y-%m-%d %H:%M:%S")
        if result.error is not None:
            print(printable(f"adbvoice: {when} {result.key}: {result.error}"), file=sys.stderr, flush=True)
            return
        report = result.report
        for message in report.warnings if verbose else ():
            printer.warn(message)
        for message in report.errors:
            print(f"adbvoice: {printable(message)}", file=sys.stderr)
        print(printable(f"{when} {report.device}: {report.summary_line()}"), flush=True)
        if settings["transcribe"]:
            from adbvoice.commands.transcripts import transcribe_after_backup

            transcribe_after_backup(settings, cancel, quiet=False, silent_if_busy=False)

    cancel = CancelToken()
    watcher = Watcher(config, interval_s=interval, on_event=with_prompts(printer, notices), on_result=on_result,
                      cancel=cancel, log=log, wifi_choice=choice)
    try:
        with signals_cancel(cancel):
            call(verbose, watcher.run)
    finally:
        printer.close()


@app.command()
def schedule(
    archive: ArchiveArg = None,
    every: Annotated[
        Optional[str], typer.Option(metavar="15m|1h|1d|…", help="How often: minutes dividing an hour, hours "
                                    "dividing a day, or 1d (daily at 03:00).")
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Instead: a service that runs `adbvoice watch` from login, so plugging "
                           "the phone in is all it takes (notifying, unless notify = false).")
    ] = False,
    tcp: TcpOpt = None,
    wifi: WifiOpt = False,
    phone: PhoneOpt = None,
    log_file: LogFileOpt = None,
    cron: Annotated[bool, typer.Option("--cron", help="A line for your crontab.")] = False,
    systemd: Annotated[bool, typer.Option("--systemd", help="A systemd user service (and timer).")] = False,
    launchd: Annotated[bool, typer.Option("--launchd", help="A launchd agent (macOS).")] = False,
    install: Annotated[bool, typer.Option("--install", help="Install it (replacing this archive's job).")] = False,
    uninstall: Annotated[
        bool, typer.Option("--uninstall", help="Remove what --install installed for this archive.")
    ] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Print, or install, a cron, systemd or launchd job that backs up the phone every so
    often, or (--watch) whenever it is plugged in; silent unless something went wrong, one
    line per run in the log file.

    Example: adbvoice schedule --every 1h --tcp 192.168.1.20 --cron --install
    """
    from adbvoice.unattended import schedule as jobs
    from adbvoice.unattended.runlog import default_log_file

    if watch and cron:
        raise fail(errors.UsageError("--watch runs as a service: choose --systemd or --launchd, not --cron"), verbose)
    if cron + systemd + launchd != 1:
        raise fail(errors.UsageError("choose one of --cron, --systemd and --launchd"), verbose)
    if install and uninstall:
        raise fail(errors.UsageError("--install and --uninstall do opposite things: choose one"), verbose)
    if watch and every is not None:
        raise fail(errors.UsageError("--watch backs up whenever the phone arrives: it takes no --every"), verbose)
    settings = call(verbose, lambda: resolve(dict(archive=archive, tcp=tcp, log_file=log_file, wifi=wifi or None,
                                                  phone=phone)))
    call(verbose, lambda: wifi_choice(settings))  # --tcp with --wifi is refused here, not at every run
    root: Path = settings["archive"]
    kind = "watch" if watch else "backup"
    if uninstall:
        if cron:
            removed = [f"the crontab entry for {root}"] if call(verbose, lambda: jobs.uninstall_cron(root)) else []
        elif systemd:
            removed = [str(p) for p in call(verbose, lambda: jobs.uninstall_systemd(root, watch=watch))]
        else:
            removed = [str(p) for p in call(verbose, lambda: jobs.uninstall_launchd(jobs.launchd_label(root, kind)))]
        print(f"removed {' and '.join(removed)}" if removed else f"nothing was scheduled for {root}")
        return
    if not watch and every is None:
        raise fail(errors.UsageError("--every is needed: how often to back up (15m, 1h, 1d, ...)"), verbose)
    period = None if watch else call(verbose, lambda: jobs.parse_every(every))
    command = jobs.watch_command if watch else jobs.backup_command
    argv = call(verbose, lambda: command(settings, settings["log_file"] or default_log_file()))
    if cron:
        line = jobs.cron_line(period, argv)
        if install:
            call(verbose, lambda: jobs.install_cron(root, line))
            print(f"installed in your crontab:\n{line}")
        else:
            print(line)
        return
    if launchd:
        label = jobs.launchd_label(root, kind)
        plist = jobs.launchd_plist(label, argv, period)
        if install:
            path = call(verbose, lambda: jobs.install_launchd(label, plist))
            print(f"installed and loaded {label}: {path}")
        else:
            print(f"# {jobs.launch_agents_folder() / f'{label}.plist'}\n{plist}")
        return
    units = jobs.watch_unit(root, argv) if watch else jobs.systemd_units(root, period, argv)
    if install:
        started = next(iter(units)) if watch else f"{jobs.unit_name(root)}.timer"
        written = call(verbose, lambda: jobs.install_systemd(units, started))
        print(f"installed and started {started}: {', '.join(map(str, written))}")
        return
    for filename, text in units.items():
        print(f"# {jobs.user_unit_folder() / filename}\n{text}")


@config_app.command("show")
def config_show(verbose: VerboseOpt = False) -> None:
    """Print every setting as it resolves now, and where it comes from (flags given to a
    command come first, then ADBVOICE_<NAME> variables, then the config file, then defaults).

    Example: adbvoice config show
    """
    settings = call(verbose, lambda: resolve({}))
    for name in SETTINGS:
        value, source = settings[name], settings.source(name)
        if value is None:
            print(f"# {name}: not set  ({source})")
        else:
            plain = list(value) if isinstance(value, tuple) else value if isinstance(value, bool) else str(value)
            shown = json.dumps(plain, ensure_ascii=False)
            print(f"{name} = {shown}  # {source}")


@config_app.command("path")
def config_file_path() -> None:
    """Print where the config file is (or would be).

    Example: adbvoice config path
    """
    print(config_path())
