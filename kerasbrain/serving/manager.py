"""Which model versions are served: reads `models.config`, watches `saved_models/`, loads and unloads.

Behaves like TF Serving's server core: a version policy per model (`latest` N, `all`, `specific`),
version labels, polling of the base paths and of the config file for changes without a restart,
and availability preservation: a new version is loaded (and warmed up) before an old one is
unloaded, and a config or version that fails to load leaves what is serving in place.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from kerasbrain.export.layout import versions as versions_on_disk
from kerasbrain.serving.batching import BatchingOptions
from kerasbrain.serving.errors import ServingError, invalid, not_found
from kerasbrain.serving.protos import ConfigFileError, parse_model_server_config
from kerasbrain.serving.servable import Servable

log = logging.getLogger("kerasbrain.serving")
DOCKER_PREFIX = "/models/"


@dataclass
class VersionState:
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END (TF Serving's ModelVersionStatus.State)
    error: str = ""


@dataclass
class ModelEntry:
    name: str
    base_path: Path
    policy: tuple  # ("latest", n) | ("all",) | ("specific", (v, ...))
    labels: dict[str, int] = field(default_factory=dict)
    servables: dict[int, Servable] = field(default_factory=dict)
    states: dict[int, VersionState] = field(default_factory=dict)


def _policy(config) -> tuple:
    which = config.model_version_policy.WhichOneof("policy_choice")
    if which == "all":
        return ("all",)
    if which == "specific":
        return ("specific", tuple(sorted(config.model_version_policy.specific.versions)))
    if which == "latest" and config.model_version_policy.latest.num_versions > 0:
        return ("latest", config.model_version_policy.latest.num_versions)
    return ("latest", 1)


def wanted_versions(policy: tuple, present: list[int]) -> list[int]:
    if policy[0] == "all":
        return list(present)
    if policy[0] == "specific":
        return [v for v in present if v in policy[1]]
    return list(present[-policy[1]:])


class ModelManager:
    """Thread-safe registry of servables, refreshed by `refresh()` (called by a polling thread)."""

    def __init__(self, model_config_file=None, model_name=None, model_base_path=None, saved_models_dir=None,
                 batching: BatchingOptions | None = None, case_admission=None):
        if (model_config_file is None) == (model_name is None):
            raise ValueError("give either a model config file or a model name and base path")
        self.config_file = Path(model_config_file) if model_config_file else None
        self.single = (model_name, Path(model_base_path)) if model_name else None
        self.saved_models_dir = Path(saved_models_dir) if saved_models_dir else None
        self.batching = batching
        self.case_admission = case_admission
        self.config_error = ""
        self._config_text = None
        self._entries: dict[str, ModelEntry] = {}
        self._lock = threading.RLock()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    # -- configuration -------------------------------------------------------------------------
    def _resolve_base_path(self, base_path: str) -> Path:
        path = Path(base_path)
        if not path.is_absolute() and self.config_file is not None:
            path = self.config_file.parent / path
        if not path.exists() and base_path.startswith(DOCKER_PREFIX) and self.saved_models_dir is not None:
            path = self.saved_models_dir / base_path[len(DOCKER_PREFIX):]
        return path

    def _read_config(self):
        """[(name, base path, policy, labels)] from the config file or the single model; raises on a bad file."""
        if self.single is not None:
            return [(self.single[0], self.single[1], ("latest", 1), {})]
        text = self.config_file.read_text()
        config = parse_model_server_config(self.config_file)
        if config.WhichOneof("config") != "model_config_list":
            raise ConfigFileError(f"{self.config_file}: only model_config_list is supported")
        models, names = [], set()
        for c in config.model_config_list.config:
            if not c.name or not c.base_path:
                raise ConfigFileError(f"{self.config_file}: every config needs name and base_path")
            if c.name in names:
                raise ConfigFileError(f"{self.config_file}: model {c.name!r} is configured twice")
            if c.model_platform not in ("", "tensorflow"):
                raise ConfigFileError(f"{self.config_file}: model_platform must be 'tensorflow' ({c.name})")
            names.add(c.name)
            models.append((c.name, self._resolve_base_path(c.base_path), _policy(c), dict(c.version_labels)))
        self._config_text = text
        return models

    def apply_config(self, config) -> None:
        """Replace the configuration with a ModelServerConfig proto (gRPC HandleReloadConfigRequest)."""
        from google.protobuf import text_format

        if self.config_file is None:
            raise ServingError("FAILED_PRECONDITION", "the server was started with a single model, not a config file")
        tmp = self.config_file.with_name(self.config_file.name + ".reload")
        tmp.write_text(text_format.MessageToString(config))
        try:
            parse_model_server_config(tmp)
            tmp.replace(self.config_file)
        except ConfigFileError as exc:
            tmp.unlink(missing_ok=True)
            raise invalid(str(exc)) from exc
        self.refresh()
        if self.config_error:
            raise invalid(self.config_error)

    # -- refresh ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the config and the base paths; load new versions, then unload unwanted ones."""
        with self._refresh_lock:
            try:
                models = self._read_config()
                self.config_error = ""
            except (OSError, ConfigFileError) as exc:
                if self.config_error != str(exc):
                    log.error("keeping the current models: %s", exc)
                self.config_error = str(exc)
                return
            configured = {m[0] for m in models}
            for name in list(self._entries):
                if name not in configured:
                    self._unload_model(name)
            for name, base_path, policy, labels in models:
                with self._lock:
                    entry = self._entries.get(name)
                    if entry is None:
                        entry = self._entries[name] = ModelEntry(name, base_path, policy)
                    entry.base_path, entry.policy = base_path, policy
                self._sync_versions(entry)
                with self._lock:
                    available = {v for v, s in entry.states.items() if s.state == "AVAILABLE"}
                    kept = {label: v for label, v in labels.items() if v in available}
                    for label in sorted(set(labels) - set(kept)):
                        if entry.labels.get(label, "unset") is not None:  # warn once per change
                            log.warning("label %r of %s points to version %s, which is not available",
                                        label, name, labels[label])
                    entry.labels = {**kept, **{label: None for label in set(labels) - set(kept)}}

    def _sync_versions(self, entry: ModelEntry) -> None:
        """Load the versions the policy wants, then unload the rest.

        Versions that failed to load count as absent, so a broken new export never pushes a
        working version out of the policy's window: what is serving stays in place.
        """
        def failed(v):
            state = entry.states.get(v)
            return state is not None and state.state == "END" and bool(state.error)

        on_disk = versions_on_disk(entry.base_path)
        for version in wanted_versions(entry.policy, [v for v in on_disk if not failed(v)]):
            state = entry.states.get(version)
            if state is None or state.state != "AVAILABLE":
                self._load(entry, version)
        wanted = wanted_versions(entry.policy, [v for v in on_disk if not failed(v)])
        for version in list(entry.servables):
            if version not in wanted:
                self._unload(entry, version)

    def _load(self, entry: ModelEntry, version: int) -> None:
        with self._lock:
            entry.states[version] = VersionState("LOADING")
        try:
            servable = Servable(entry.name, version, entry.base_path / str(version), self.batching,
                                self.case_admission)
            servable.warm_up()
        except Exception as exc:  # a broken version never takes the server down
            message = f"failed to load {entry.name} version {version}: {type(exc).__name__}: {exc}"
            log.error(message)
            with self._lock:
                entry.states[version] = VersionState("END", message[:2000])
            return
        with self._lock:
            entry.servables[version] = servable
            entry.states[version] = VersionState("AVAILABLE")
        log.info("serving %s version %s", entry.name, version)

    def _unload(self, entry: ModelEntry, version: int) -> None:
        with self._lock:
            servable = entry.servables.pop(version, None)
            entry.states[version] = VersionState("END")
            for label in [k for k, v in entry.labels.items() if v == version]:
                del entry.labels[label]
        if servable is not None:
            servable.close()
            log.info("unloaded %s version %s", entry.name, version)

    def _unload_model(self, name: str) -> None:
        entry = self._entries[name]
        for version in list(entry.servables):
            self._unload(entry, version)
        with self._lock:
            del self._entries[name]

    # -- polling ---------------------------------------------------------------------------------
    def start_polling(self, seconds: float) -> None:
        if seconds <= 0:
            return

        def loop():
            while not self._stop.wait(seconds):
                try:
                    self.refresh()
                except Exception:  # keep polling whatever happens
                    log.exception("refresh failed")

        self._thread = threading.Thread(target=loop, name="model-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for name in list(self._entries):
            self._unload_model(name)

    # -- lookups ---------------------------------------------------------------------------------
    def _entry(self, name: str) -> ModelEntry:
        entry = self._entries.get(name)
        if entry is None:
            raise not_found(f"Servable not found for request: Latest({name})")
        return entry

    def _version_of(self, entry: ModelEntry, version: int | None, label: str | None) -> int | None:
        """The version a request names directly or through a label (None: not named)."""
        if label is None:
            return version
        if entry.labels.get(label) is None:
            raise not_found(f"Unrecognized servable version label: {label}")
        return entry.labels[label]

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable for a request: a version, a label, or the newest available."""
        with self._lock:
            entry = self._entry(name)
            version = self._version_of(entry, version, label)
            if version is not None:
                servable = entry.servables.get(int(version))
                if servable is None:
                    raise not_found(f"Servable not found for request: Specific({name}, {version})")
                return servable
            if not entry.servables:
                raise not_found(f"Servable not found for request: Latest({name})")
            return entry.servables[max(entry.servables)]

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[tuple[int, VersionState]]:
        with self._lock:
            entry = self._entry(name)
            version = self._version_of(entry, version, label)
            if version is not None:
                if int(version) not in entry.states:
                    raise not_found(f"Could not find version {version} of model {name}")
                return [(int(version), entry.states[int(version)])]
            return sorted(entry.states.items(), reverse=True)

    def labels(self, name: str) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in self._entry(name).labels.items() if v is not None}

    def model_names(self) -> list[str]:
        with self._lock:
            return sorted(self._entries)
