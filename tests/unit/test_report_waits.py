"""Waits kept packed in the rollups read back exactly, and rollups kept before (lists of numbers) still read."""

from app.domains.reports.waits import Waits, pack, unpack


def test_packed_waits_read_back_whole_and_the_same_waits_pack_the_same_whatever_their_order():
    waits = [0, 1, 59, 3600, 86_400 * 40, 7, 7]
    packed = pack(waits)
    assert isinstance(packed, bytes) and len(packed) == 4 * len(waits)
    assert list(unpack(packed)) == sorted(waits)
    assert pack(reversed(waits)) == packed  # a recount that finds the same waits has nothing to write
    assert Waits.of(unpack(packed)) == Waits.of(waits) == Waits(count=7, median=7.0, p90=86_400 * 40)


def test_rollups_kept_as_lists_before_still_read():
    assert list(unpack([30, 10, 20])) == [30, 10, 20]
    assert Waits.of(unpack([30, 10, 20])).median == 20.0


def test_a_wait_out_of_range_is_kept_at_the_nearest_bound():
    assert list(unpack(pack([-3, 2**40]))) == [0, 2**32 - 1]
