"""A SIP proxy and an alarm receiving centre for the SCAIP tests, from Debian's packages.

Kamailio (`kamailio`, `kamailio-tls-modules`) is the centre's SIP proxy: it listens on TCP
and TLS, challenges every MESSAGE for digest credentials (407) and relays the
authenticated ones over TCP to SIPp (`sip-tester`), which plays the centre with one of the
scenarios in tests/fixtures/scaip/ and writes every message it receives to a file.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from gateway.broker import free_port, port_open
from tests.support import FIXTURES, wait_for

SCENARIOS = FIXTURES / "scaip"
KAMAILIO_MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
REALM = "larm.test"
USER = "tillsyn-gw"
PASSWORD = "s3cret-digest"

KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
disable_tcp=no
enable_tls={tls}
auto_aliases=no
listen=tcp:127.0.0.1:{tcp_port}
{tls_listen}
mpath="{modules}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "auth.so"
{tls_module}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (!is_method("MESSAGE")) {{ sl_send_reply("405", "Method Not Allowed"); exit; }}
    if ($au != "{user}" || !pv_proxy_authenticate("{realm}", "{password}", "0")) {{
        xlog("L_NOTICE", "challenge for MESSAGE from $si ($au)\\n");
        proxy_challenge("{realm}", "0");
        exit;
    }}
    consume_credentials();
    xlog("L_NOTICE", "relay MESSAGE $ci to the centre\\n");
    $du = "sip:127.0.0.1:{centre_port};transport=tcp";
    if (!t_relay()) {{ sl_reply_error(); }}
    exit;
}}
"""

TLS_CFG = """[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = {key}
certificate = {cert}

[client:default]
verify_certificate = no
require_certificate = no
"""


class Kamailio:
    """The centre's SIP proxy with digest authentication, on TCP (and TLS with `certs`)."""

    def __init__(self, centre_port: int, certs: dict[str, Path] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tillsyn-kamailio-"))
        self.tcp_port = free_port()
        self.tls_port = free_port() if certs else None
        self.centre_port = centre_port
        self.certs = certs
        self.log = self.dir / "kamailio.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        kamailio = shutil.which("kamailio") or "/usr/sbin/kamailio"
        tls_listen = tls_module = ""
        if self.certs:
            tls_cfg = self.dir / "tls.cfg"
            tls_cfg.write_text(TLS_CFG.format(key=self.certs["server.key"],
                                              cert=self.certs["server.crt"]))
            tls_listen = f"listen=tls:127.0.0.1:{self.tls_port}"
            tls_module = f'loadmodule "tls.so"\nmodparam("tls", "config", "{tls_cfg}")'
        cfg = self.dir / "kamailio.cfg"
        cfg.write_text(KAMAILIO_CFG.format(
            tls="yes" if self.certs else "no", tcp_port=self.tcp_port,
            tls_listen=tls_listen, tls_module=tls_module, modules=KAMAILIO_MODULES,
            user=USER, realm=REALM, password=PASSWORD, centre_port=self.centre_port))
        check = subprocess.run([kamailio, "-c", "-f", str(cfg)], capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stderr[-2000:]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [kamailio, "-f", str(cfg), "-DD", "-E", "-m", "64", "-M", "8",
                 "-Y", str(self.dir)], stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: "relay" in self.log.read_text() or port_open(self.tcp_port),
                 timeout=20, what="Kamailio listening")

    def proxy_uri(self, transport: str) -> str:
        port = self.tls_port if transport == "tls" else self.tcp_port
        return f"sip:127.0.0.1:{port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        _end(self.proc, signal.SIGTERM)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Centre:
    """SIPp playing an alarm receiving centre with one scenario, on TCP."""

    def __init__(self, scenario: str, port: int | None = None) -> None:
        self.scenario = SCENARIOS / f"centre-{scenario}.xml"
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tillsyn-sipp-"))
        self.messages = self.dir / "messages.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.received_before: list[str] = []  # bodies of earlier runs (restart keeps them)

    def start(self, scenario: str | None = None) -> None:
        if scenario is not None:
            self.scenario = SCENARIOS / f"centre-{scenario}.xml"
        sipp = shutil.which("sipp") or "/usr/bin/sipp"
        if self.messages.exists():
            self.received_before += self._bodies(self.messages.read_text(errors="replace"))
            self.messages.unlink()
        self.proc = subprocess.Popen(
            [sipp, "-sf", str(self.scenario), "-t", "t1", "-i", "127.0.0.1",
             "-p", str(self.port), "-nostdin", "-trace_msg", "-message_file",
             str(self.messages), "-trace_err", "-error_file", str(self.dir / "errors.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            cwd=self.dir)
        wait_for(lambda: port_open(self.port), timeout=20, what="SIPp listening")

    def stop(self) -> None:
        _end(self.proc, signal.SIGINT)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def _bodies(text: str) -> list[str]:
        return re.findall(r"<\?xml[^>]*\?>\s*<mrq>.*?</mrq>", text, flags=re.S)

    def bodies(self) -> list[str]:
        """Every SCAIP request received (this run and earlier ones), in order."""
        now = self._bodies(self.messages.read_text(errors="replace")) \
            if self.messages.exists() else []
        return self.received_before + now


def _end(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    """Stop a child with `sig`, killing it if it has not ended within 10 s."""
    if proc is None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
