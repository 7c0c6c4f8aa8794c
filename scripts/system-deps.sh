#!/usr/bin/env bash
# Install the system services and the browser Tillsyn's demo and tests use, from Debian.
# As root: installs what is missing. Otherwise: prints exactly what to install, exit 2.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v openssl >/dev/null 2>&1 || need+=(openssl)  # test certificates for TLS
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
  || need+=(postgresql)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
# The web UI tests drive Debian's Chromium through Playwright (no browser download).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The time-series export test writes to a private VictoriaMetrics (InfluxDB v2 write API).
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
# The alarm-centre tests: Kamailio as SIP proxy with digest auth, SIPp as the centre.
command -v kamailio >/dev/null 2>&1 || [ -x /usr/sbin/kamailio ] || need+=(kamailio)
ls /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so >/dev/null 2>&1 \
  || need+=(kamailio-tls-modules)
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
# The systemd unit is checked with systemd's own verifier.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if [ "${#need[@]}" -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -eq 0 ]; then
  echo "installing from apt: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts the packaged services; Tillsyn runs its own private instances.
  systemctl disable --now mosquitto victoria-metrics kamailio >/dev/null 2>&1 || true
else
  echo "missing system packages; install them with:" >&2
  echo "  sudo apt-get install -y ${need[*]}" >&2
  exit 2
fi
