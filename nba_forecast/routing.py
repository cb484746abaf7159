"""Which model versions serve, with which traffic shares, and which arm each game gets.

One ``Routing`` is the whole serving decision: the production version, an optional
challenger, the challenger's share of games and the salt of the experiment. It travels as
JSON (the ``routing.json`` key of the model-routing ConfigMap that GitOps commits and the
server Pods mount), and the same object assigns arms in the server, the rollout step and
the replay.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

CONFIGMAP_KEY = "routing.json"


def assign_arm(game_id: str, salt: str, share_b: float) -> str:
    """'B' for a stable ``share_b`` of games, else 'A': sha256(salt:game_id) below the
    share, so a game keeps its arm within one experiment and raising the share only moves
    A games to B."""
    digest = hashlib.sha256(f"{salt}:{game_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "B" if position < share_b else "A"


# what the committed overlays hold before the first lifecycle step writes a version
PLACEHOLDER_PRODUCTION = "bootstrap-pending"


@dataclass(frozen=True)
class Routing:
    production: str
    challenger: str | None = None
    challenger_share: float = 0.0
    salt: str = ""

    def __post_init__(self) -> None:
        if not self.production:
            raise ValueError("routing needs a production version")
        if not 0.0 <= self.challenger_share <= 1.0:
            raise ValueError(f"challenger_share {self.challenger_share} is not in [0, 1]")

    def arm(self, game_id: str) -> str:
        if not self.challenger or self.challenger_share <= 0:
            return "A"
        return assign_arm(game_id, self.salt, self.challenger_share)

    def version_for(self, arm: str) -> str:
        return self.challenger if arm == "B" and self.challenger else self.production

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Routing:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"routing is not JSON: {error}") from None
        if not isinstance(data, dict) or not isinstance(data.get("production"), str):
            raise ValueError("routing must be a JSON object with a 'production' version")
        return cls(
            production=data["production"],
            challenger=data.get("challenger") or None,
            challenger_share=float(data.get("challenger_share", 0.0)),
            salt=str(data.get("salt", "")),
        )

    def configmap(self, env: str) -> str:
        """The model-routing ConfigMap of an overlay (JSON is valid YAML, and the server
        reads the mounted key with json)."""
        return "\n".join(
            [
                "apiVersion: v1",
                "kind: ConfigMap",
                "metadata:",
                "  name: nba-forecast-model-routing",
                "  labels:",
                "    app.kubernetes.io/name: nba-forecast",
                f"    nba-forecast/environment: {env}",
                "data:",
                f"  {CONFIGMAP_KEY}: '{self.to_json()}'",
                "",
            ]
        )

    @classmethod
    def mounted(cls, path: Path | None) -> Routing | None:
        """The routing a server follows from its mounted file: None without a file, or
        while it holds the overlays' placeholder (before the first routing commit)."""
        if path is None or not path.exists():
            return None
        routing = cls.read(path)
        return None if routing.production == PLACEHOLDER_PRODUCTION else routing

    @classmethod
    def read(cls, path: Path) -> Routing:
        """From the mounted ConfigMap key (a JSON file) or the ConfigMap manifest itself."""
        text = path.read_text()
        if text.lstrip().startswith("{"):
            return cls.from_json(text)
        for line in text.splitlines():
            key, _, value = line.strip().partition(":")
            if key == CONFIGMAP_KEY:
                return cls.from_json(value.strip().strip("'"))
        raise ValueError(f"{path}: no {CONFIGMAP_KEY} key in the routing ConfigMap")
