"""The scores table on both backends: many keys read in one call (chunked), many rows written in one
transaction, the first value of a key kept, NULL for a metric that does not apply, exact floats. Reads
answer by each key's position in the keys asked for."""
from workbench.store import open_store
from workbench.store.base import KEYS_PER_STATEMENT


def _rows(n: int, metric: str = "chrf", version: str = "1#abc", offset: float = 0.0):
    return [(metric, version, f"resp-{k}", f"ref-{k % 7}", k / 3 + offset, None) for k in range(n)]


def test_scores_round_trip_exactly_in_chunks(any_store):
    n = 2 * KEYS_PER_STATEMENT + 17  # more keys than one statement takes
    assert any_store.put_scores(_rows(n)) == n
    keys = [(f"resp-{k}", f"ref-{k % 7}") for k in range(n)]
    stored = any_store.stored_scores("chrf", "1#abc", keys)
    assert stored == {k: k / 3 for k in range(n)}  # a float comes back bit for bit


def test_only_the_asked_metric_version_and_reference_come_back(any_store):
    any_store.put_scores(_rows(5) + _rows(5, version="2#abc", offset=100) + _rows(5, metric="bleu", offset=200))
    assert any_store.stored_scores("chrf", "2#abc", [("resp-1", "ref-1")]) == {0: 1 / 3 + 100}
    assert any_store.stored_scores("chrf", "1#abc", [("resp-1", "ref-2")]) == {}  # same answer, another item
    assert any_store.stored_scores("rouge_l", "1#abc", [("resp-1", "ref-1")]) == {}
    assert any_store.stored_scores("chrf", "1#abc", []) == {}


def test_a_stored_key_keeps_its_first_value_and_nan_is_null(any_store):
    any_store.put_scores([("m", "1", "r", "f", None, None), ("m", "1", "r2", "f", 0.5, '{"why": "x"}')])
    any_store.put_scores([("m", "1", "r", "f", 9.0, None), ("m", "1", "r2", "f", 1.0, None)])  # same keys again
    assert any_store.stored_scores("m", "1", [("r", "f"), ("r2", "f")]) == {0: None, 1: 0.5}
    assert any_store.put_scores([]) == 0


def test_a_read_only_store_reads_scores(tmp_path):
    path = tmp_path / "s.db"
    with open_store(path) as store:
        store.put_scores(_rows(3))
    with open_store(path, create=False, read_only=True) as store:
        assert store.read_only
        assert store.stored_scores("chrf", "1#abc", [("x", "y"), ("resp-2", "ref-2")]) == {1: 2 / 3}


def test_keys_in_any_order_repeated_and_over_several_statements(any_store, monkeypatch):
    monkeypatch.setattr(any_store, "keys_per_probe", 7)  # several statements for the keys below
    n = 40
    any_store.put_scores(_rows(3 * n) + [("chrf", "1#abc", "resp-1", "ref-other", 9.0, '{"d": 1}')])  # more
    # rows stored than twice the keys asked for: looked up by key, not read in one scan
    asked = [(f"resp-{k}", f"ref-{k % 7}") for k in reversed(range(n))] + [("resp-missing", "ref-1"),
                                                                           ("resp-1", "ref-other"), ("resp-3", "ref-3")]
    expected = {at: int(key[0][5:]) / 3 for at, key in enumerate(asked[:n])}
    assert any_store.stored_scores("chrf", "1#abc", asked) == {**expected, n + 1: 9.0, n + 2: 1.0}  # repeated key
    assert any_store.stored_details("chrf", "1#abc", asked) == {n + 1: '{"d": 1}'}  # NULL details are absent
    assert any_store.stored_details("chrf", "1#abc", []) == {}


def test_odd_keys_are_found_on_both_backends(any_store):
    odd = ["", "é 日本", 'q"uote\\', "[1, 2]", "null", "12", "a\tb", "\u2028"]
    any_store.put_scores([("m", "1", key, key[::-1], float(k), None) for k, key in enumerate(odd)])
    asked = [(key, key[::-1]) for key in odd]
    assert any_store.stored_scores("m", "1", asked) == {k: float(k) for k in range(len(odd))}  # in one scan
    any_store.put_scores([("m", "1", f"other-{k}", "", 0.0, None) for k in range(3 * len(odd))])
    assert any_store.stored_scores("m", "1", asked) == {k: float(k) for k in range(len(odd))}  # by key


def test_a_whole_dataset_is_read_in_one_scan_and_a_part_per_key_with_the_same_answer(any_store, monkeypatch):
    n = 2 * KEYS_PER_STATEMENT + 17
    any_store.put_scores(_rows(n) + [("chrf", "1#abc", "resp-1", "ref-other", 9.0, '{"d": 1}')])
    probed: list[int] = []
    rows_at = type(any_store)._rows_at

    def counted(self, columns, table, key_columns, keys, *args, **kwargs):
        probed.append(len(keys))
        return rows_at(self, columns, table, key_columns, keys, *args, **kwargs)

    monkeypatch.setattr(type(any_store), "_rows_at", counted)
    every = [(f"resp-{k}", f"ref-{k % 7}") for k in range(n)] + [("resp-missing", "ref-1"), ("resp-2", "ref-2")]
    assert any_store.stored_scores("chrf", "1#abc", every) == {**{k: k / 3 for k in range(n)}, n + 1: 2 / 3}
    assert probed == []  # as many rows stored as asked for: one scan, a repeated key answered at each place
    part = every[:10] + [("resp-1", "ref-other")]
    assert any_store.stored_scores("chrf", "1#abc", part) == {**{k: k / 3 for k in range(10)}, 10: 9.0}
    assert any_store.stored_details("chrf", "1#abc", part) == {10: '{"d": 1}'}
    assert probed == [11, 11]  # a few of many: looked up by key
