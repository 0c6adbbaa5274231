"""Small text files in a sweep's storage, wherever it is: a path (or file://) every node mounts, or object storage
(s3://, gs://) through pyarrow's file systems, as Ray itself reaches it. The launch's state record and, on object
storage, the copies of the trials' records live there, so a driver on another machine finds them."""
from __future__ import annotations

import os
from pathlib import Path


def local_path(location: str) -> Path | None:
    """A file-system path for a local location (a path or file://), None for object storage."""
    if "://" not in location or location.startswith("file://"):
        return Path(location.removeprefix("file://")).expanduser()
    return None


def write_text(location: str, text: str) -> None:
    """Replace the file whole: atomically on a file system; an object is never seen half-written."""
    path = local_path(location)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        return
    import pyarrow.fs

    fs, key = pyarrow.fs.FileSystem.from_uri(location)
    with fs.open_output_stream(key) as out:
        out.write(text.encode())


def read_text(location: str) -> str:
    """The file's text; FileNotFoundError when there is none."""
    path = local_path(location)
    if path is not None:
        return path.read_text()
    import pyarrow.fs

    fs, key = pyarrow.fs.FileSystem.from_uri(location)
    if fs.get_file_info(key).type == pyarrow.fs.FileType.NotFound:
        raise FileNotFoundError(location)
    with fs.open_input_stream(key) as stream:
        return stream.read().decode()


def remove(location: str) -> None:
    """Delete the file; one already gone is no error."""
    path = local_path(location)
    if path is not None:
        path.unlink(missing_ok=True)
        return
    import pyarrow.fs

    fs, key = pyarrow.fs.FileSystem.from_uri(location)
    if fs.get_file_info(key).type != pyarrow.fs.FileType.NotFound:
        fs.delete_file(key)


def files_named(folder: str, name: str) -> list[str]:
    """Locations of the files called `name` one level below `folder` (each trial's directory), sorted."""
    import pyarrow.fs

    path = local_path(folder)
    if path is not None:
        return sorted(str(p) for p in path.glob(f"*/{name}"))
    fs, key = pyarrow.fs.FileSystem.from_uri(folder)
    scheme = folder.split("://", 1)[0]
    entries = fs.get_file_info(pyarrow.fs.FileSelector(key, allow_not_found=True, recursive=True))
    return sorted(f"{scheme}://{e.path}" for e in entries
                  if e.base_name == name and e.path.count("/") == key.rstrip("/").count("/") + 2)
