"""The mobile edge server: hospital phones record at the bedside, this machine transcribes and
drafts with the same consultation engine as the desktop, and nothing is stored anywhere.

``pairing`` (one-time codes → device cookies, in memory), ``control`` (the local Unix-socket
channel ``scribe edge pair`` uses), ``frames`` (the audio frames' header and order),
``sessions`` (live consultations, admission control, resume, the grace period), ``server``
(the FastAPI app: the phone client's files, the API, the capture WebSocket) and
``static/`` (the phone client). The protocol is ``docs/edge-protocol.md``.
"""
