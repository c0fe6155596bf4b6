"""The live MQTT service: snapshots in, Home Assistant entities and bridge detections out."""
