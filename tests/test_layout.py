"""A user picks where notes go with --layout; nothing the phone sends can steer a write outside."""

from datetime import date
from pathlib import PurePosixPath

import pytest

from adbvoice.archive.layout import DEFAULT_LAYOUT, NAME_MAX, Layout, safe_name, with_suffix_number
from adbvoice.errors import LayoutError

DAY = date(2021, 5, 3)


def render(template: str, name: str = "PTT-20210503-WA0007.opus", device: str = "Pixel 7") -> PurePosixPath:
    return Layout.parse(template).render(day=DAY, name=name, source="voice", device=device)


def test_the_default_layout_is_year_month_day_and_the_original_name():
    assert render(DEFAULT_LAYOUT) == PurePosixPath("2021/05/03/PTT-20210503-WA0007.opus")


def test_every_token_renders():
    path = render("{device}/{source}/{isoyear}-W{week}/{stem}.{ext}")
    assert path == PurePosixPath("Pixel_7/voice/2021-W18/PTT-20210503-WA0007.opus")


@pytest.mark.parametrize(
    "template",
    ["/abs/{name}", "../{name}", "{year}/../{name}", "{year}//{name}", "./{name}", "{year}/{month}",
     "{nope}/{name}", "{name!r}", "{year:>8}/{name}", ".adbvoice/{name}", "{year}\\{name}", "{"],
)
def test_a_template_that_could_escape_or_break_the_archive_is_refused(template):
    with pytest.raises(LayoutError) as caught:
        Layout.parse(template)
    assert caught.value.exit_code == 23
    assert "\n" not in str(caught.value)


def test_a_device_name_with_slashes_stays_one_folder():
    assert render("{device}/{name}", device="../../etc") == PurePosixPath(".._.._etc/PTT-20210503-WA0007.opus")


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"PTT-20210503-WA0007.opus", "PTT-20210503-WA0007.opus"),
        (b"line\nbreak.opus", "line_break.opus"),
        (b"bad\xff\xfebytes.opus", "bad__bytes.opus"),
        (b"..", "_.."),
        (b"back\\slash.opus", "back_slash.opus"),
        (b"rtl\xe2\x80\xaeoverride.opus", "rtl_override.opus"),
    ],
)
def test_phone_names_become_safe_local_names(raw, expected):
    result = safe_name(raw)
    assert result.name == expected
    assert result.changed == (raw != expected.encode())


def test_a_255_byte_name_is_shortened_but_keeps_its_extension_and_room_for_a_suffix():
    long_name = ("é" * 200 + ".opus").encode()
    name = safe_name(long_name).name
    assert name.endswith(".opus")
    assert len(with_suffix_number(name, 99).encode()) <= NAME_MAX


def test_collision_suffixes_go_before_the_extension():
    assert with_suffix_number("PTT-20210503-WA0007.opus", 2) == "PTT-20210503-WA0007-2.opus"
    assert with_suffix_number("noext", 3) == "noext-3"
