"""Where results go besides MQTT: the last stage of a frame's trip.

- `frigate`: a Frigate event for each alert (created at its start, ended at its end), so the
  alert shows in Frigate's UI with its recording.
"""
