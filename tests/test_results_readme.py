"""results/README.md describes every folder under results/: a record nobody can place is a record nobody can
check."""
import os

RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'results')


def undescribed(results=RESULTS):
    text = open(os.path.join(results, 'README.md')).read()
    folders = [os.path.relpath(d, results) for d, _, _ in os.walk(results) if d != results]
    return sorted(f for f in folders if f'`{f}/`' not in text)


def test_every_results_folder_is_described(tmp_path):
    assert undescribed() == []
    (tmp_path / 'README.md').write_text('`a/` holds records.\n')
    (tmp_path / 'a' / 'logs').mkdir(parents=True)
    (tmp_path / 'b').mkdir()
    assert undescribed(str(tmp_path)) == ['a/logs', 'b']
