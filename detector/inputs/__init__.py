"""Where frames come in: the first stage of a frame's trip.

- `gate`: the one door every live frame passes, MQTT snapshots and the built-in poller's frames
  alike: the camera is known, the frame is within `detection.max_frame_bytes` (the one size
  check), then it is stored in the camera's slot.
- `payloads`: what an MQTT snapshot payload may be (raw JPEG/PNG, base64 text, a JSON envelope
  with `ts`), parsed on the inference worker, off paho's thread.
- `pollers`: the built-in poller (HTTP snapshot URLs, Frigate, go2rtc, Home Assistant, folders,
  RTSP/RTMP streams and video files).

Outputs other than MQTT (Frigate events) live in detector.outputs.
"""

from __future__ import annotations

from detector.inputs.gate import FrameInputs
from detector.inputs.payloads import parse_frame_payload

__all__ = ["FrameInputs", "parse_frame_payload"]
