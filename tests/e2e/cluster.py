"""Cluster mode of the end-to-end harness (FERRY_E2E_CLUSTER=1): the
"server" of a scenario is three ferryd instances sharing one PostgreSQL
database and one S3 bucket (Ceph RGW), behind an HAProxy on one port.

The services themselves run once per test run (scripts/services.sh; their
address comes from the environment: FERRY_TEST_PG, FERRY_S3_ENDPOINT,
FERRY_S3_REGION, FERRY_S3_ACCESS_KEY, FERRY_S3_SECRET_KEY). Per scenario a
Cluster makes a fresh database (CREATE DATABASE through psql) and a fresh
bucket, writes an haproxy.cfg for this scenario's free ports, and offers
the same methods as harness.Server, so that every scenario runs unchanged:
start/stop/kill act on every instance and on the proxy (the service as a
whole goes down and comes back with the same database and bucket),
log_text() is every instance's log, disk_usage() the bytes in the bucket
(listed with a SigV4-signed ListObjectsV2; the test side signs by hand,
with the standard library, while ferryd uses libcurl's signer), and
vm_hwm_kib() the largest instance's peak RSS. Scenarios that need the
instances themselves (tests/e2e/test_scale.py) use .instances, .haproxy_set
(the proxy's admin socket), .gateway (a radosgw of the scenario's own,
private_rgw) and pg_restart (of a PostgreSQL of its own, private_pg).
"""

import datetime
import hashlib
import hmac
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

import harness
from harness import SLOW, Failure, Server, free_port, tail

INSTANCES = int(os.environ.get("FERRY_E2E_INSTANCES", "3") or 3)
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
# FERRY_E2E_CLUSTER_FS=1 (a developer's aid, when Ceph is not at hand): the
# instances share a chunk folder instead of a bucket.
SHARED_FS = os.environ.get("FERRY_E2E_CLUSTER_FS", "") not in ("", "0")
SERVICE_VARS = ("FERRY_TEST_PG",) if SHARED_FS else (
    "FERRY_TEST_PG", "FERRY_S3_ENDPOINT", "FERRY_S3_ACCESS_KEY", "FERRY_S3_SECRET_KEY")

_counter = [0]


def enabled():
    return os.environ.get("FERRY_E2E_CLUSTER", "") not in ("", "0")


def missing_services():
    """Names of the service variables that are not set."""
    return [v for v in SERVICE_VARS if not os.environ.get(v)]


def unique_name(prefix, scenario):
    """A name for a database or bucket, unique per process and scenario:
    lowercase letters, digits and '-' / '_' only, at most 63 characters."""
    _counter[0] += 1
    base = "%s%d%s%d" % (prefix, os.getpid(), prefix[-1], _counter[0])
    rest = re.sub(r"[^a-z0-9]+", prefix[-1], scenario.lower()).strip(prefix[-1])
    return (base + prefix[-1] + rest)[:63].rstrip(prefix[-1])


# ---- PostgreSQL --------------------------------------------------------------

def pg_uri(dbname, base=None):
    """FERRY_TEST_PG (or base) with its database replaced by dbname."""
    u = urllib.parse.urlsplit(base or os.environ["FERRY_TEST_PG"])
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + dbname, u.query, u.fragment))


def psql(sql, uri=None, timeout=30 * SLOW):
    """Runs one SQL statement with psql; returns its unaligned output."""
    argv = ["psql", uri or os.environ["FERRY_TEST_PG"], "-X", "-q", "-A", "-t",
            "-v", "ON_ERROR_STOP=1", "-c", sql]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise Failure("psql %r failed (rc %d): %s" % (sql, p.returncode,
                                                      tail(p.stderr.decode(errors="replace"))))
    return p.stdout.decode(errors="replace").strip()


def pg_restart(pg_dir):
    """scripts/pg.sh restart DIR: fast shutdown (every connection is cut)
    and start on the same port. Returns the seconds it took."""
    t0 = time.monotonic()
    p = subprocess.run(["bash", os.path.join(REPO, "scripts", "pg.sh"), "restart", pg_dir],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60 * SLOW)
    if p.returncode != 0:
        raise Failure("pg.sh restart %s failed: %s" % (pg_dir, tail(p.stderr.decode())))
    return time.monotonic() - t0


def pg_private(dirpath):
    """Starts a PostgreSQL cluster of this scenario's own (for scenarios
    that restart it): returns its conninfo URI."""
    p = subprocess.run(["bash", os.path.join(REPO, "scripts", "pg.sh"), "start", dirpath],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60 * SLOW)
    if p.returncode != 0:
        raise Failure("pg.sh start %s failed: %s" % (dirpath, tail(p.stderr.decode())))
    return p.stdout.decode().strip().splitlines()[-1]


def pg_private_stop(dirpath):
    subprocess.run(["bash", os.path.join(REPO, "scripts", "pg.sh"), "stop", dirpath],
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60 * SLOW)


# ---- S3 (the test's own view of the bucket) -----------------------------------

def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def s3_request(method, bucket, query=(), body=b"", timeout=30 * SLOW, endpoint=None):
    """One SigV4-signed path-style request to endpoint (default
    FERRY_S3_ENDPOINT). Returns (status, body)."""
    ep = urllib.parse.urlsplit(endpoint or os.environ["FERRY_S3_ENDPOINT"])
    region = os.environ.get("FERRY_S3_REGION") or "us-east-1"
    access, secret = os.environ["FERRY_S3_ACCESS_KEY"], os.environ["FERRY_S3_SECRET_KEY"]
    now = datetime.datetime.now(datetime.timezone.utc)
    amzdate, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    path = "/" + urllib.parse.quote(bucket, safe="/-_.~")  # "BUCKET" or "BUCKET/KEY"
    q = sorted((urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
               for k, v in query)
    canon_q = "&".join("%s=%s" % kv for kv in q)
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": ep.netloc, "x-amz-content-sha256": payload, "x-amz-date": amzdate}
    signed = ";".join(sorted(headers))
    canon = "\n".join([method, path, canon_q,
                       "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)),
                       signed, payload])
    scope = "%s/%s/s3/aws4_request" % (day, region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope,
                     hashlib.sha256(canon.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), day), region), "s3"),
                "aws4_request")
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                                "Signature=%s" % (access, scope, signed, sig))
    conn = http.client.HTTPConnection(ep.hostname, ep.port or 80, timeout=timeout)
    try:
        conn.request(method, path + ("?" + canon_q if canon_q else ""), body=body or None,
                     headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def s3_create_bucket(bucket, endpoint=None):
    st, data = s3_request("PUT", bucket, endpoint=endpoint)
    if st != 200 and b"BucketAlreadyOwnedByYou" not in data:
        raise Failure("creating bucket %s: HTTP %d %r" % (bucket, st, data[:300]))


def s3_bucket_bytes(bucket, endpoint=None):
    """(objects, bytes) in the bucket, over every page of ListObjectsV2."""
    n = total = 0
    token = None
    while True:
        query = [("list-type", "2"), ("max-keys", "1000")]
        if token:
            query.append(("continuation-token", token))
        st, data = s3_request("GET", bucket, query, endpoint=endpoint)
        if st == 404:
            return 0, 0
        if st != 200:
            raise Failure("listing bucket %s: HTTP %d %r" % (bucket, st, data[:300]))
        root = ET.fromstring(data)
        ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        for c in root.iter(ns + "Contents"):
            n += 1
            total += int(c.findtext(ns + "Size") or 0)
        token = root.findtext(ns + "NextContinuationToken")
        if (root.findtext(ns + "IsTruncated") or "false") != "true" or not token:
            return n, total


# ---- a gateway of the scenario's own (the bucket-unreachable scenario) --------

def ceph_dir():
    return os.path.join(os.environ.get("FERRY_TEST_SERVICES", ""), "ceph")


def http_up(url):
    u = urllib.parse.urlsplit(url)
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
        c.request("GET", "/")
        return c.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False


class Gateway:
    """A second radosgw on the shared Ceph cluster (same zone, users and
    buckets), on a port of its own, that a scenario may stop and start
    without taking the S3 of the other scenarios running beside it away."""

    def __init__(self, root):
        self.dir = os.path.join(root, "rgw")
        self.port = free_port()
        self.proc = None

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=60 * SLOW):
        os.makedirs(self.dir, exist_ok=True)
        argv = ["radosgw", "-c", os.path.join(ceph_dir(), "ceph.conf"), "-n", "client.rgw", "-f",
                "--rgw_frontends=beast endpoint=127.0.0.1:%d tcp_nodelay=1" % self.port,
                "--pid_file=" + os.path.join(self.dir, "rgw.pid"),
                "--admin_socket=" + os.path.join(self.dir, "rgw.asok"),
                "--log_file=" + os.path.join(self.dir, "rgw.log")]
        with open(os.path.join(self.dir, "rgw.out"), "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        if not harness.wait_for(lambda: self.proc.poll() is not None or http_up(self.endpoint),
                                timeout, 0.1) or self.proc.poll() is not None:
            rc = self.proc.poll()
            self.stop()
            raise Failure("radosgw on :%d did not answer within %d s (exit %s): %s" % (
                self.port, timeout, rc, tail(Cluster._read(os.path.join(self.dir, "rgw.log")))))

    def stop(self, timeout=20 * SLOW):
        """SIGTERM, then SIGKILL: connections to the port are refused."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# ---- HAProxy -----------------------------------------------------------------

# The scenario's load balancer: contrib/haproxy.cfg (the documented one:
# mode tcp, so that each device connection is one ferryd connection, see
# its comments), with this scenario's ports, an admin socket, and quicker
# health checks than production's (a killed instance is marked down within
# ~0.5 s; refused connections are redispatched to another instance anyway).
# FALLBACK_CFG is the same shape, for a tree without contrib/haproxy.cfg.
CONTRIB_CFG = os.path.join(REPO, "contrib", "haproxy.cfg")
FALLBACK_CFG = """\
global
defaults
    mode tcp
    retries 2
    option redispatch
    timeout connect 5s
    timeout client 310s
    timeout server 310s
frontend ferry
    bind :8700
    default_backend ferryd
backend ferryd
    balance leastconn
    option httpchk GET /api/v1/health
    server i1 127.0.0.1:8701 check
"""


def haproxy_cfg(port, sock, backends):
    """The configuration text: backends is a list of (name, port)."""
    try:
        with open(CONTRIB_CFG) as f:
            text = f.read()
    except OSError:
        text = FALLBACK_CFG
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("server ") or s.startswith("default-server ") or s.startswith("log "):
            continue
        if s.startswith("bind "):
            line = "    bind 127.0.0.1:%d" % port
        out.append(line)
        if s == "global":
            out += ["    stats socket %s mode 600 level admin" % sock,
                    "    log stdout format raw local0 info",
                    "    hard-stop-after 5s"]
        if s == "defaults":
            out += ["    log global", "    option tcplog"]
    # A refused check (a dead instance) fails at once; a slow answer (a
    # busy sanitized build) has 10 s, so a live instance is never cut off.
    out += ["    timeout check 10s",
            "    default-server inter 250ms fastinter 250ms downinter 250ms fall 2 rise 1 "
            "on-marked-down shutdown-sessions"]
    out += ["    server f%d 127.0.0.1:%d check" % (i + 1, p) for i, p in enumerate(backends)]
    return "\n".join(out) + "\n"


class Cluster:
    """INSTANCES ferryd instances on one database and bucket behind HAProxy;
    a stand-in for harness.Server."""

    def __init__(self, root, log_path, registration="open", args=(), name="cluster",
                 private_pg=False, private_rgw=False):
        self.root, self.log_path, self.registration = root, log_path, registration
        self.args = list(args)
        self.name = name
        self.port = free_port()
        self.data_dir = os.path.join(root, "instances")  # no chunks here: they are in S3
        self.private_pg = os.path.join(root, "pg") if private_pg else None
        self.pg_base = None
        self.gateway = Gateway(root) if private_rgw and not SHARED_FS else None
        self.db = unique_name("fe2e_", name)
        self.bucket = unique_name("fe2e-", name)
        self.created = self.pg_started = self.db_created = False
        self.instances = []
        self.haproxy = None
        self.cfg_path = os.path.join(root, "haproxy.cfg")
        self.sock_path = os.path.join(root, "haproxy.sock")
        self.haproxy_log = os.path.join(root, "haproxy.log")
        self._du = (0.0, 0)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def metadata(self):
        return pg_uri(self.db, self.pg_base)

    @property
    def s3_endpoint(self):
        return self.gateway.endpoint if self.gateway else os.environ["FERRY_S3_ENDPOINT"]

    @property
    def blobs(self):
        if SHARED_FS:
            return os.path.join(self.root, "chunks")
        region = os.environ.get("FERRY_S3_REGION") or "us-east-1"
        return "s3://%s?endpoint=%s&region=%s" % (
            self.bucket, urllib.parse.quote(self.s3_endpoint, safe=":/"), region)

    def _create(self):
        # Each step is marked done as it succeeds, so that destroy() undoes
        # exactly what a failed start left behind.
        if self.private_pg:
            self.pg_base = pg_private(self.private_pg)
            self.pg_started = True
        psql('CREATE DATABASE "%s"' % self.db, self.pg_base)
        self.db_created = True
        if self.gateway:
            self.gateway.start()
        if not SHARED_FS:
            s3_create_bucket(self.bucket, self.s3_endpoint)
        os.makedirs(self.data_dir, exist_ok=True)
        for i in range(INSTANCES):
            srv = Server(os.path.join(self.data_dir, "f%d" % (i + 1)),
                         os.path.join(self.root, "ferryd-%d.log" % (i + 1)),
                         registration=self.registration)
            self.instances.append(srv)
        self.created = True

    def _argv_args(self, i):
        return self.args + ["--metadata", self.metadata, "--blobs", self.blobs,
                            "--instance-id", "f%d" % (i + 1)]

    def start(self, timeout=20 * SLOW):
        """Every instance at once (so they also race the schema migration),
        then the proxy; returns once the proxy answers /api/v1/health."""
        if not self.created:
            self._create()
        for i, srv in enumerate(self.instances):
            srv.args = self._argv_args(i)  # scenarios may have changed self.args
        errors = []

        def one(srv):
            try:
                srv.start(timeout)
            except Exception as e:  # noqa: BLE001
                errors.append("%s: %s" % (os.path.basename(srv.data_dir), e))
        threads = [threading.Thread(target=one, args=(s,)) for s in self.instances]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.kill()
            raise Failure("cluster start: " + "; ".join(errors))
        self.start_haproxy(timeout)

    def start_haproxy(self, timeout=20 * SLOW):
        with open(self.cfg_path, "w") as f:
            f.write(haproxy_cfg(self.port, self.sock_path, [s.port for s in self.instances]))
        log = open(self.haproxy_log, "ab")
        self.haproxy = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg_path],
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.haproxy.poll() is not None:
                raise Failure("haproxy exited with %s at start:\n%s" %
                              (self.haproxy.returncode, tail(self._read(self.haproxy_log))))
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/api/v1/health")
                if c.getresponse().status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        raise Failure("haproxy not answering on %d within %d s" % (self.port, timeout))

    def stop_haproxy(self):
        if self.haproxy and self.haproxy.poll() is None:
            self.haproxy.terminate()
            try:
                self.haproxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()
                self.haproxy.wait()
        self.haproxy = None

    def haproxy_set(self, server, state):
        """Sets an instance's state in the proxy ("ready", "drain", "maint")
        through the admin socket; server is 1-based."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(self.sock_path)
            s.sendall(b"set server ferryd/f%d state %s\n" % (server, state.encode()))
            out = s.recv(4096).decode(errors="replace").strip()
        finally:
            s.close()
        if out:
            raise Failure("haproxy: set server f%d state %s: %s" % (server, state, out))

    def stop(self, timeout=10 * SLOW):
        """SIGTERM to every instance at once, then the proxy. Returns (the
        first non-zero exit code, else 0, or None when none was running;
        whether any needed SIGKILL after timeout)."""
        live = [s for s in self.instances if s.proc and s.proc.poll() is None]
        for s in live:
            s.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        rcs, killed = [], False
        for s in live:
            try:
                s.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait()
                killed = True
            rcs.append(s.proc.returncode)
        for s in self.instances:
            s.proc = None
        self.stop_haproxy()
        if not rcs:
            return None, False
        return next((r for r in rcs if r != 0), 0), killed

    def kill(self):
        for s in self.instances:
            s.kill()
        self.stop_haproxy()

    def running(self):
        return any(s.running() for s in self.instances)

    def destroy(self):
        """After stop: drops the database (the bucket stays; the gateway is
        thrown away with the run) and this scenario's PostgreSQL, if any."""
        if self.gateway:
            self.gateway.stop()
        try:
            if self.db_created:
                psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.db, self.pg_base)
                self.db_created = False
        finally:
            if self.pg_started:
                pg_private_stop(self.private_pg)
                self.pg_started = False

    @property
    def pid(self):
        return self.instances[0].pid if self.instances else None

    @property
    def proc(self):
        return self.instances[0].proc if self.instances else None

    def vm_hwm_kib(self):
        return max((s.vm_hwm_kib() for s in self.instances if s.proc), default=0)

    @staticmethod
    def _read(path):
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_text(self):
        return "".join("\n==== instance f%d (%s) ====\n%s" % (i + 1, s.url, s.log_text())
                       for i, s in enumerate(self.instances))

    def log_tail(self):
        return "\n".join("[f%d] %s" % (i + 1, tail(s.log_text(), 700))
                         for i, s in enumerate(self.instances))

    def disk_usage(self):
        """Bytes of chunk data stored: the bucket's objects (cached for 50 ms,
        since some scenarios poll it in a tight loop)."""
        if SHARED_FS:
            total = 0
            for top, _dirs, files in os.walk(self.blobs):
                for f in files:
                    try:
                        total += os.lstat(os.path.join(top, f)).st_size
                    except OSError:
                        pass
            return total
        t, v = self._du
        if time.monotonic() - t > 0.05:
            v = s3_bucket_bytes(self.bucket, self.s3_endpoint)[1]
            self._du = (time.monotonic(), v)
        return v
