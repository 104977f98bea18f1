"""The scores table on both backends: many keys read in one call (chunked), many rows written in one
transaction, the first value of a key kept, NULL for a metric that does not apply, exact floats."""
from workbench.store import open_store
from workbench.store.base import KEYS_PER_STATEMENT


def _rows(n: int, metric: str = "chrf", version: str = "1#abc", offset: float = 0.0):
    return [(metric, version, f"resp-{k}", f"ref-{k % 7}", k / 3 + offset, None) for k in range(n)]


def test_scores_round_trip_exactly_in_chunks(any_store):
    n = 2 * KEYS_PER_STATEMENT + 17  # more keys than one statement takes
    assert any_store.put_scores(_rows(n)) == n
    keys = [(f"resp-{k}", f"ref-{k % 7}") for k in range(n)]
    stored = any_store.stored_scores("chrf", "1#abc", keys)
    assert stored == {key: k / 3 for k, key in enumerate(keys)}  # a float comes back bit for bit


def test_only_the_asked_metric_version_and_reference_come_back(any_store):
    any_store.put_scores(_rows(5) + _rows(5, version="2#abc", offset=100) + _rows(5, metric="bleu", offset=200))
    assert any_store.stored_scores("chrf", "2#abc", [("resp-1", "ref-1")]) == {("resp-1", "ref-1"): 1 / 3 + 100}
    assert any_store.stored_scores("chrf", "1#abc", [("resp-1", "ref-2")]) == {}  # same answer, another item
    assert any_store.stored_scores("rouge_l", "1#abc", [("resp-1", "ref-1")]) == {}
    assert any_store.stored_scores("chrf", "1#abc", []) == {}


def test_a_stored_key_keeps_its_first_value_and_nan_is_null(any_store):
    any_store.put_scores([("m", "1", "r", "f", None, None), ("m", "1", "r2", "f", 0.5, '{"why": "x"}')])
    any_store.put_scores([("m", "1", "r", "f", 9.0, None), ("m", "1", "r2", "f", 1.0, None)])  # same keys again
    assert any_store.stored_scores("m", "1", [("r", "f"), ("r2", "f")]) == {("r", "f"): None, ("r2", "f"): 0.5}
    assert any_store.put_scores([]) == 0


def test_a_read_only_store_reads_scores(tmp_path):
    path = tmp_path / "s.db"
    with open_store(path) as store:
        store.put_scores(_rows(3))
    with open_store(path, create=False, read_only=True) as store:
        assert store.read_only
        assert store.stored_scores("chrf", "1#abc", [("resp-2", "ref-2"), ("x", "y")]) == {("resp-2", "ref-2"): 2 / 3}


def test_a_whole_dataset_is_read_in_one_scan_and_a_part_per_key_with_the_same_answer(any_store, monkeypatch):
    n = 2 * KEYS_PER_STATEMENT + 17
    any_store.put_scores(_rows(n) + [("chrf", "1#abc", "resp-1", "ref-other", 9.0, '{"d": 1}')])
    chunked: list[int] = []
    rows_for_keys = type(any_store)._rows_for_keys

    def counted(self, sql, keys, *args, **kwargs):
        chunked.append(len(set(keys)))
        return rows_for_keys(self, sql, keys, *args, **kwargs)

    monkeypatch.setattr(type(any_store), "_rows_for_keys", counted)
    every = [(f"resp-{k}", f"ref-{k % 7}") for k in range(n)] + [("resp-missing", "ref-1")]
    assert any_store.stored_scores("chrf", "1#abc", every) == {key: k / 3 for k, key in enumerate(every[:-1])}
    assert chunked == []  # as many rows stored as asked for: one scan
    part = every[:10] + [("resp-1", "ref-other")]
    assert any_store.stored_scores("chrf", "1#abc", part) == {**{key: k / 3 for k, key in enumerate(part[:10])},
                                                              ("resp-1", "ref-other"): 9.0}
    assert any_store.stored_details("chrf", "1#abc", part) == {("resp-1", "ref-other"): '{"d": 1}'}
    assert chunked == [10, 10]  # a few of many: looked up by key
