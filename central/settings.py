"""Central's settings (``CENTRAL_*`` environment variables).

Built in ``main()`` and passed down; nothing reads the environment at import
time. A default or short JWT secret fails fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_WEAK_SECRETS = {"", "secret", "changeme", "change-me", "changethis"}


class CentralSettings(BaseSettings):
    """Everything one central process needs."""

    model_config = SettingsConfigDict(env_prefix="CENTRAL_", extra="forbid")

    database_url: str
    jwt_secret: Annotated[str, Field(min_length=32)]
    data_dir: Path = Path("data")
    broker_host: str = "127.0.0.1"
    broker_port: Annotated[int, Field(ge=1, le=65535)] = 1883
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=0, le=65535)] = 8000
    # The reverse proxies whose X-Forwarded-For / -Proto central believes
    # (comma-separated addresses or networks, uvicorn's forwarded_allow_ips).
    # Empty: none, not even 127.0.0.1, so the client address that login
    # back-off, audit and kiosk limits use is the connection's own.
    forwarded_allow_ips: Annotated[str, Field(max_length=1024)] = ""
    # Access tokens are short; the console renews them with the refresh
    # token (an httpOnly cookie) until the session's own lifetime ends.
    jwt_ttl_s: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 15 * 60
    session_ttl_s: Annotated[int, Field(ge=300, le=30 * 24 * 3600)] = 12 * 3600
    ingest_batch: Annotated[int, Field(ge=1, le=10000)] = 500
    ingest_flush_s: Annotated[float, Field(gt=0, le=5)] = 0.05
    ingest_inflight: Annotated[int, Field(ge=1, le=65535)] = 2000
    # Plate events carry their evidence (plate crop and scene as JPEG).
    max_payload_bytes: Annotated[int, Field(ge=256, le=16 * 1024 * 1024)] = 1024 * 1024
    # A bearer token Prometheus sends to scrape /metrics (admins may too).
    metrics_token: Annotated[str | None, Field(min_length=32)] = None
    # The broker's max_packet_size: central refuses a command, configuration
    # or policy that would not fit (baling/broker.py sets the same value).
    broker_max_packet: Annotated[int, Field(ge=4096, le=256 * 1024 * 1024)] = (
        1024 * 1024
    )
    worker_id: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,32}$")] = "w1"
    workers: Annotated[int, Field(ge=0, le=64)] = 1
    # None: shared when this process runs several workers. Set true when
    # several central processes split the ingest (see the README's caveat).
    ingest_shared: bool | None = None
    # "k/n": this process takes the k-th of n partitions of the devices
    # (by a hash of the id) on a plain persistent subscription, and
    # acknowledges the rest unread. Mosquitto restores plain subscriptions
    # after a restart but not shared ones, so a site on Mosquitto scales
    # out this way without a restart losing events (see the README).
    ingest_partition: Annotated[
        str | None, Field(pattern=r"^[1-9][0-9]?/[1-9][0-9]?$")
    ] = None
    # This process's first worker keeps presence (devices' state, the
    # offline sweep) and the services' timers (adaptive signals, SOS
    # repeats, rollouts). When several processes share the ingest, exactly
    # one keeps it; the others set this false.
    ingest_presence: bool = True
    # The SOS lane (central/police/lane.py): None runs it beside the ingest
    # workers (a thread in each process that has any); false leaves it to
    # another process; true runs it here even with CENTRAL_WORKERS=0 — a
    # process of its own for SOS, whose GIL no bulk batch holds.
    sos_lane: bool | None = None
    offline_after_s: Annotated[float, Field(ge=5)] = 120.0
    # How long a plan push waits for the cabinet's acknowledgement (504 after).
    signal_push_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    # Fleet CA (created under data_dir/ca on first start) and where enrolled
    # nodes find the broker's mutual-TLS listener.
    ca_passphrase: str | None = None
    # Central's own identity on the broker (certificate CN "central"); without
    # them central connects plainly (a loopback listener on the same host).
    broker_ca_file: Path | None = None
    broker_cert_file: Path | None = None
    broker_key_file: Path | None = None
    broker_public_host: str = "127.0.0.1"
    broker_tls_port: Annotated[int, Field(ge=1, le=65535)] = 8883
    # Without broker_cert_file, central mints one service identity per
    # connection (central-api-<worker>, central-ingest-<worker>-<i>) under
    # data_dir/broker-identities: the broker forces client id = certificate
    # name, so each connection needs its own (docs/security.md).
    # Where central writes the broker's ACL (camera → its cabinet's state);
    # the broker re-reads it on SIGHUP (a .path unit, or baling.broker's watch).
    broker_acl_file: Path | None = None
    # Serve /ota over mutual TLS on this port (0: not at all) to fleet
    # certificates only; ota_plain_http also serves it on the plain HTTP app
    # (a dev/test setting: no node identity, every device's metadata).
    ota_tls_port: Annotated[int, Field(ge=0, le=65535)] = 0
    ota_tls_cert_file: Path | None = None
    ota_tls_key_file: Path | None = None
    ota_plain_http: bool = True
    # Police: SOS radius, repeat and escalation; the beat watch's thresholds.
    police_sos_radius_m: Annotated[float, Field(gt=0, le=50_000)] = 2000.0
    police_sos_repeat_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    police_sos_escalate_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    police_sos_delayed_s: Annotated[float, Field(gt=0, le=3600)] = 15.0
    police_beat_exit_fixes: Annotated[int, Field(ge=1, le=100)] = 2
    police_beat_exit_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    police_beat_leader_s: Annotated[float, Field(gt=0, le=86_400)] = 900.0
    police_stationary_m: Annotated[float, Field(gt=0, le=1000)] = 50.0
    police_stationary_s: Annotated[float, Field(gt=0, le=86_400)] = 1200.0
    police_tz: str = "Asia/Shanghai"
    # Plates: reads that hit nothing are deleted after this many days; hits on
    # these categories alert the officers within the radius of the camera.
    ota_tick_s: Annotated[float, Field(gt=0, le=300)] = 5.0  # rollouts move on
    # The release signing (image targets) key, for publishing from the
    # console. Demo only: a deployment keeps it offline (`baling release`).
    ota_release_keys: Path | None = None
    # Deliver rollouts through balena-cloud (or an openBalena) instead of the
    # director repositories: the fleet's slug, an API key, the host.
    ota_balena_fleet: str = ""
    ota_balena_token: str = ""
    ota_balena_host: str = "balena-cloud.com"
    plate_retention_days: Annotated[float, Field(gt=0, le=3650)] = 30.0
    plate_unsure_below: Annotated[float, Field(ge=0, le=1)] = 0.9
    plate_handheld_categories: list[str] = Field(
        default_factory=lambda: ["stolen", "wanted"]
    )
    plate_radius_m: Annotated[float, Field(gt=0, le=50_000)] = 3000.0
    # Repeated hits of one listed plate at one camera within this many
    # seconds of its last sighting update one alarm; 0 raises one per hit.
    plate_alarm_window_s: Annotated[float, Field(ge=0, le=86_400)] = 900.0
    # The base map every console page and the kiosk draw on (docs/maps.md):
    # "mbtiles:" (the archive the set-up builds), "mbtiles:PATH" (a county's
    # own vector tiles), "xyz:URL" (raster tiles with {z}/{x}/{y}) or
    # "tianditu:KEY" (天地图, CGCS2000: GNSS positions need no offset).
    map_base: Annotated[
        str, Field(pattern=r"^(mbtiles|xyz|tianditu):", max_length=2048)
    ] = "mbtiles:"
    # Open311 clients that may file requests (the spec's api_key).
    open311_api_keys: list[str] = Field(default_factory=list)
    # The county's Open311 jurisdiction_id; requests naming another are refused.
    open311_jurisdiction_id: Annotated[str, Field(min_length=1, max_length=64)] = (
        "yyx.gov.cn"
    )

    @field_validator("ingest_partition")
    @classmethod
    def _partition(cls, value: str | None) -> str | None:
        if value is not None:
            k, n = (int(x) for x in value.split("/"))
            if k > n:
                raise ValueError(f"expected k/n with k ≤ n, got {value}")
        return value

    def partition(self) -> tuple[int, int] | None:
        """``ingest_partition`` as (index from 0, count), or None."""
        if self.ingest_partition is None:
            return None
        k, n = (int(x) for x in self.ingest_partition.split("/"))
        return k - 1, n

    @field_validator("jwt_secret")
    @classmethod
    def _strong(cls, value: str) -> str:
        if value.strip().lower() in _WEAK_SECRETS:
            raise ValueError("expected a random secret, got a default one")
        return value
