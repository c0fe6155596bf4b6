"""Constants of the SmokeWatch integration."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "smokewatch"

# The detector's topics below its prefix P: the wire contract (detector/contract.py), whose
# golden payloads in tests/contract/ tests/ha checks these against. The retained P/info is the
# description a lone detector publishes; each of several detectors sharing a prefix publishes
# its own info, available and stats below P/instance/<id>/. The manifest's MQTT discovery
# topics are the default prefix's.
DEFAULT_PREFIX: Final = "smokewatch"
INFO_LEAF: Final = "info"
AVAILABLE_LEAF: Final = "available"
STATS_LEAF: Final = "stats"
INSTANCE_LEVEL: Final = "instance"
# One bridge per prefix, whatever the number of detectors.
BRIDGE_AVAILABLE_LEAF: Final = "bridge/available"
BRIDGE_STATS_LEAF: Final = "bridge/stats"
# A camera's commands: P/<camera>/<setting>/set; each is answered on P/<camera>/<setting>/result
# by a detector whose info lists the feature, and may then carry a request id in an envelope:
# {"request_id": <id>, "value": <the payload>} (tests/contract/command_request.json).
SETTING_MASKS: Final = "masks"
COMMAND_LEAF: Final = "set"
RESULT_LEAF: Final = "result"
FEATURE_COMMAND_RESULTS: Final = "command_results"
REQUEST_ID: Final = "request_id"
REQUEST_VALUE: Final = "value"
BUTTON_RESET: Final = "reset"
BUTTON_TEST: Final = "test"
BUTTON_FALSE_ALARM: Final = "false_alarm"
# What a masks command may hold (the detector refuses more): tests/contract/masks_rules.json.
MAX_ZONES: Final = 50
MAX_ZONE_POINTS: Final = 100

CONF_PREFIX: Final = "prefix"
CONF_NODE_ID: Final = "node_id"
CONF_INSTANCE: Final = "instance"
CONF_OFFLINE_MINUTES: Final = "offline_minutes"

DEFAULT_OFFLINE_MINUTES: Final = 10
MIN_OFFLINE_MINUTES: Final = 1
MAX_OFFLINE_MINUTES: Final = 1440

# How long the manual and reconfigure steps, and a service call that arrives before it, wait
# for the detector's retained info.
INFO_WAIT_SECONDS: Final = 5.0
# The manual steps keep listening this long after the last new detector's info: the retained
# infos of several detectors under one prefix arrive together, right after subscribing.
INFO_SETTLE_SECONDS: Final = 0.5
# How long a service waits for each camera's answer (and, before publishing, for its
# subscription to the answer to be in place).
RESULT_WAIT_SECONDS: Final = 10.0

# The device identifier domain of the devices MQTT discovery creates.
MQTT_DOMAIN: Final = "mqtt"

SERVICE_SET_ZONES: Final = "set_zones"
SERVICE_CLEAR_ZONES: Final = "clear_zones"
SERVICE_RESET_ALERT: Final = "reset_alert"
SERVICE_TEST_ALERT: Final = "test_alert"
SERVICE_MARK_FALSE_ALARM: Final = "mark_false_alarm"

ATTR_ZONES: Final = "zones"
ATTR_NAME: Final = "name"
ATTR_POLYGON: Final = "polygon"
ATTR_RULE: Final = "rule"
ATTR_ENABLED: Final = "enabled"

ZONE_RULES: Final = ("inside", "iou")

PAYLOAD_PRESS: Final = "PRESS"

# The zone card, served from the integration's own folder (see frontend.py).
CARD_URL_BASE: Final = "/smokewatch_static"
CARD_FILENAME: Final = "smokewatch-zone-card.js"

STATUS_MODEL_MISSING: Final = "model_missing"

ISSUE_OFFLINE: Final = "detector_offline"
ISSUE_BRIDGE_FAILING: Final = "bridge_failing"
ISSUE_MODEL_MISSING: Final = "model_missing"
