"""Constants of the SmokeWatch integration."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "smokewatch"

# The retained topic every detector publishes its description on (P/info); the manifest's
# MQTT discovery topic is the default prefix's.
DEFAULT_PREFIX: Final = "smokewatch"
INFO_LEAF: Final = "info"

CONF_PREFIX: Final = "prefix"
CONF_NODE_ID: Final = "node_id"
CONF_OFFLINE_MINUTES: Final = "offline_minutes"

DEFAULT_OFFLINE_MINUTES: Final = 10
MIN_OFFLINE_MINUTES: Final = 1
MAX_OFFLINE_MINUTES: Final = 1440

# How long the manual and reconfigure steps wait for the detector's retained info.
INFO_WAIT_SECONDS: Final = 5.0

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

PAYLOAD_ON: Final = "ON"
PAYLOAD_OFF: Final = "OFF"
PAYLOAD_PRESS: Final = "PRESS"

# The zone card, served from the integration's own folder (see frontend.py).
CARD_URL_BASE: Final = "/smokewatch_static"
CARD_FILENAME: Final = "smokewatch-zone-card.js"

STATUS_MODEL_MISSING: Final = "model_missing"

ISSUE_OFFLINE: Final = "detector_offline"
ISSUE_BRIDGE_FAILING: Final = "bridge_failing"
ISSUE_MODEL_MISSING: Final = "model_missing"
