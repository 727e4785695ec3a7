import uuid

from pcci.master.pool_ids import PoolIdMaker, is_pool_id, timestamp_ms


def test_pool_id_is_a_uuid7_carrying_the_submit_millisecond():
    pool_id = PoolIdMaker().make(1795995431123)
    assert uuid.UUID(pool_id).version == 7
    assert timestamp_ms(pool_id) == 1795995431123


def test_ids_made_in_the_same_millisecond_are_unique_and_ordered():
    maker = PoolIdMaker()
    ids = [maker.make(1000) for _ in range(5000)]
    assert len(set(ids)) == 5000
    assert ids == sorted(ids)


def test_ids_sort_by_time_even_if_the_clock_steps_back():
    maker = PoolIdMaker()
    first, second = maker.make(2000), maker.make(1500)
    assert second > first


def test_non_pool_ids_are_recognised():
    assert not is_pool_id("123")
    assert not is_pool_id(str(uuid.uuid4()))
    assert not is_pool_id(None)
