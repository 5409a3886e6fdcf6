"""Model files are written atomically: a crash, a full disk or a planted link
leaves the previous file and no temporary file.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from _io_helpers import _host_params, _net

import bpnet.io as bio


# --- atomic writes ----------------------------------------------------------------
def _only(tmp_path, *names):
    assert sorted(os.listdir(tmp_path)) == sorted(names)


def test_crash_while_writing_keeps_the_previous_file(tmp_path, monkeypatch):
    old = _net()
    path = bio.save(old, tmp_path / "m.npz")
    os.chmod(path, 0o640)
    new = _net()
    new.set_parameters([p + 1 for p in _host_params(new)])
    real, calls = np.lib.format.write_array, []

    def write_then_crash(fp, array, *args, **kwargs):
        calls.append(array.shape)
        if len(calls) == 3:  # the metadata and one array are already in the zip
            fp.write(b"partial")
            raise OSError("disk full")
        return real(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_then_crash)
    with pytest.raises(OSError, match="disk full"):
        bio.save(new, path)
    monkeypatch.undo()
    assert len(calls) == 3
    _only(tmp_path, "m.npz")
    for a, b in zip(_host_params(old), _host_params(bio.load(path))):
        np.testing.assert_array_equal(a, b)

    def fail_replace(src, dst):
        raise OSError("no")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(OSError, match="no"):
        bio.save(new, path)
    with pytest.raises(OSError, match="no"):
        bio.save(new, tmp_path / "fresh.npz")
    monkeypatch.undo()
    _only(tmp_path, "m.npz")
    np.testing.assert_array_equal(_host_params(bio.load(path))[0], _host_params(old)[0])
    bio.save(new, path)  # a clean write replaces it and keeps its mode
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    np.testing.assert_array_equal(_host_params(bio.load(path))[0], _host_params(new)[0])


def test_atomic_write_text_and_bytes(tmp_path, monkeypatch):
    p = tmp_path / "history.json"
    assert bio.atomic_write_text(p, '{"loss": [1.0]}\n') == p
    assert p.read_text() == '{"loss": [1.0]}\n'

    def crash(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="fsync failed"):
        bio.atomic_write_bytes(p, b"half")
    monkeypatch.undo()
    assert p.read_text() == '{"loss": [1.0]}\n'
    _only(tmp_path, "history.json")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        bio.atomic_write_text(tmp_path / "no" / "x.txt", "x")
    with pytest.raises(TypeError, match="data"):
        bio.atomic_write_bytes(p, "text")


def test_atomic_writes_remove_only_their_own_temporary_files(tmp_path):
    """Files of other programs that look like leftovers stay, whatever their
    name; a leftover of a killed bpnet write (its name's tag checks out) goes."""
    from bpnet.io.atomic import temporary_name

    others = [
        ".notes.0123456789ab.tmp",
        ".my report.deadbeef0000.tmp",
        ".model.npz.bpnet-0123456789abcdef0123.tmp",  # our pattern, a wrong tag
    ]
    for name in others:
        (tmp_path / name).write_text("a user's file")
    leftover = tmp_path / temporary_name("model.npz")
    leftover.write_bytes(b"half a model")
    bio.save(_net(), tmp_path / "model.npz")
    _only(tmp_path, "model.npz", *others)
    for name in others:
        assert (tmp_path / name).read_text() == "a user's file"


def test_a_link_in_place_of_the_file_is_refused_and_its_target_kept(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = tmp_path / "d"
    folder.mkdir()
    link = folder / "model.npz"
    link.symlink_to(victim)
    with pytest.raises(ValueError, match=r"model\.npz.* is a symbolic link"):
        bio.save(_net(), link)
    with pytest.raises(ValueError, match="symbolic link"):
        bio.atomic_write_text(link, "x")
    assert link.is_symlink() and victim.read_text() == "precious"
    assert sorted(os.listdir(folder)) == ["model.npz"]  # no temporary file left


def test_a_full_disk_names_the_file_being_written(tmp_path, monkeypatch):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    path = tmp_path / "model.npz"
    with pytest.raises(OSError, match="No space left on device") as info:
        bio.save(_net(), path)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert str(path) in str(info.value)
    _only(tmp_path)
