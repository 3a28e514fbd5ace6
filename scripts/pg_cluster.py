"""A private PostgreSQL cluster for the rehearsal and benchmark scripts: Debian's `postgresql`
binaries, a temporary directory, loopback only, run as the `postgres` user when started as root.
(scripts/with-postgres is the same for a shell command; this one can also be a primary or a
streaming standby, and be killed.)"""

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not found:
        raise SystemExit("no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)")
    return Path(found[-1])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, name, settings=None):
        self.bin = _bin()
        self.root = Path(tempfile.mkdtemp(prefix=f"survey-{name}-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.settings = settings or {}
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")

    def _as_owner(self, *args, **kw):
        command = [str(a) for a in args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--"] + command
        return subprocess.run(command, check=True, capture_output=True, text=True, **kw)

    def init(self):
        self._as_owner(self.bin / "initdb", f"--pgdata={self.data}", "--auth=trust", "--username=postgres")
        with open(self.data / "pg_hba.conf", "a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        return self

    def base_backup_of(self, primary, application_name):
        """This cluster as a streaming standby of `primary` (pg_basebackup -R)."""
        conninfo = f"host=127.0.0.1 port={primary.port} user=postgres application_name={application_name}"
        self._as_owner(self.bin / "pg_basebackup", "-d", conninfo, "-D", self.data, "-R", "--checkpoint=fast")
        return self

    def start(self):
        options = [f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root}"]
        options += [f"-c {key}={value}" for key, value in self.settings.items()]
        self._as_owner(self.bin / "pg_ctl", "-D", self.data, "-l", self.root / "log", "-w", "-o", " ".join(options), "start")
        return self

    def url(self, database="postgres"):
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, statement, database="postgres"):
        return self._as_owner("psql", self.url(database), "-qXAtc", statement).stdout.strip()

    def promote(self):
        self._as_owner(self.bin / "pg_ctl", "-D", self.data, "-w", "promote")

    def kill9(self):
        """kill -9 of the postmaster: no shutdown checkpoint, connections cut."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)

    def close(self):
        subprocess.run(
            (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else [])
            + [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        # A killed postmaster leaves its children to notice; give them a moment to go.
        time.sleep(0.5)
        shutil.rmtree(self.root, ignore_errors=True)
