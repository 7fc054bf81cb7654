"""Writing: the one place where the grader writes a file (the tables, the class report, the feedback, the results store
and its key), always through open folder descriptors, never following a link.

- A folder the instructor named (`--out`, the submissions folder, the cache) is the instructor's choice: its path is
  resolved (a link to it is followed), created if missing, then opened once with O_DIRECTORY | O_NOFOLLOW.
- Everything below it (`feedback/`, `.grades/`, `grades/<hash>/`) is made with mkdir and opened relative to its
  parent's descriptor with O_NOFOLLOW: a link, or anything but a folder, in its place is refused (UsageError: the
  command's exit status 2), never followed.
- A file is written to a new temporary name in its folder (O_CREAT | O_EXCL | O_NOFOLLOW, relative to the folder's
  descriptor), then renamed over its name within that same folder (rename never follows a link): readers never see
  half a file, and the bytes land in the folder that was opened, wherever a link in its place would have pointed. An
  output name held by a link or by anything but a regular file is refused rather than replaced.
- `check` looks at every output name before grading starts, so a refusal comes before any work and writes nothing.
"""

import os
import secrets
import stat
from pathlib import Path

from grading.admit import UsageError, kind
from grading.text import safe

FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Folder:
    """A folder open as a descriptor, to write into without following links; a context manager that closes it."""

    def __init__(self, fd, path):
        self.fd, self.path = fd, Path(path)

    @classmethod
    def open(cls, path, mode=0o777, what="the grade tables"):
        """The instructor's folder at path, created (with its parents) if missing; raise UsageError, saying what was
        to be written there, when it cannot be opened as a folder."""
        path = Path(path).resolve()  # the instructor's own choice: a link to it is followed, once, here
        try:
            path.mkdir(parents=True, exist_ok=True, mode=mode)
            return cls(os.open(path, FOLDER), path)
        except OSError as err:
            reason = "it is not a folder" if os.path.lexists(path) and not path.is_dir() else err.strerror or str(err)
            raise UsageError(
                f"Cannot write {what} to {path}: {reason}. Pass --out with a folder you can write to."
            ) from None

    def folder(self, name, mode=0o777):
        """The folder name inside this one, made if missing, opened without following a link; else UsageError."""
        try:
            os.mkdir(name, mode, dir_fd=self.fd)
        except FileExistsError:
            pass
        except OSError as err:
            raise UsageError(f"Cannot make the folder {self.path / name}: {err.strerror or err}.") from None
        try:
            return Folder(os.open(name, FOLDER, dir_fd=self.fd), self.path / name)
        except OSError:
            raise UsageError(self.refusal(name, "a folder")) from None

    def check(self, name, folder=False):
        """Raise UsageError when name is here and is not what the grader writes there: a folder (folder), else a regular
        file (a link is neither, whatever it points to)."""
        try:
            info = os.lstat(name, dir_fd=self.fd)
        except FileNotFoundError:
            return
        if not (stat.S_ISDIR if folder else stat.S_ISREG)(info.st_mode):
            raise UsageError(self.refusal(name, "a folder" if folder else "a regular file"))

    def refusal(self, name, wanted):
        """Why name cannot be written here, and the fix."""
        path = self.path / name
        try:
            info = os.lstat(name, dir_fd=self.fd)
            found = (
                f"a symbolic link (to {safe(os.readlink(name, dir_fd=self.fd), 200)})"
                if stat.S_ISLNK(info.st_mode)
                else "a regular file"
                if stat.S_ISREG(info.st_mode)
                else kind(info.st_mode)
            )
        except OSError as err:
            found = f"unusable ({err.strerror or err})"
        return (
            f"Refusing to write {safe(str(path), 300)}: it is {found}, not {wanted}. The grader writes its outputs "
            "only into folders and files of its own and never through a link (one among the submissions could send "
            "them anywhere). Remove or rename it, or pass --out with a folder of your own, and run again; nothing "
            "was written."
        )

    def write(self, name, data, mode=0o666):
        """Write bytes to the file name in this folder atomically (a new temporary file renamed over it), following
        no link; a name held by anything but a regular file is refused (UsageError). mode is masked by the umask."""
        self.check(name)
        while True:
            temporary = f".{name[:100]}-{secrets.token_hex(6)}.tmp"
            try:
                fd = os.open(temporary, NEW_FILE, mode, dir_fd=self.fd)
                break
            except FileExistsError:
                continue
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            try:
                os.unlink(temporary, dir_fd=self.fd)
            except OSError:
                pass
            raise

    def read(self, name, limit):
        """At most limit + 1 bytes of the regular file name in this folder (no link followed), or None."""
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self.fd)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as file:
            return file.read(limit + 1) if stat.S_ISREG(os.fstat(file.fileno()).st_mode) else None

    def close(self):
        """Close the folder's descriptor."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_below(base, names, mode=0o777, what="the results store"):
    """The folder base/names[0]/names[1]/..., base opened as the instructor's (Folder.open), each name below it made
    and opened without following a link."""
    folder = Folder.open(base, mode, what)
    for name in names:
        try:
            below = folder.folder(name, mode)
        finally:
            folder.close()
        folder = below
    return folder
