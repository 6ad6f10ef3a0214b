/* Ambient scribe – phone client, served by `scribe edge serve`.
 *
 * Follows docs/edge-protocol.md: cookie pairing (pair.html), one capture WebSocket per
 * consultation, 100 ms PCM16 frames with an 8-byte header, ack/resume from an in-memory ring
 * buffer. Nothing of a consultation is persisted on the phone: audio, transcript and draft live
 * in memory (and the DOM) only and are wiped after delivery or discard.
 *
 * The same script runs both pages (<html data-page="app|pair">).
 */
'use strict';

(() => {
  const RATE = 16000;                  // samples/s on the wire (the protocol requires 16000)
  const CHUNK = 1600;                  // samples per frame when resending (100 ms)
  const RING = 10 * 60 * RATE;         // unacknowledged audio kept: ~10 min (19.2 MB of Int16)
  // "N s i buffer" shows above this much unacked audio: 1 s while the socket is down; 2 s while
  // connected, since the server acks about once a second and 1.0-1.2 s is normal between acks.
  const BUFFER_HINT = {connected: 2 * RATE, other: RATE};
  const PING_MS = 15000;
  const SOCKET_HIGH_WATER = 256 * 1024;  // resend pauses while the socket's send queue is this full
  const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

  // Close codes after which reconnecting is pointless, and what to show if no error came first.
  const TERMINAL_CLOSE = {
    4401: 'Telefonen er ikke lenger koblet til. Skann QR-koden fra IT på nytt.',
    4403: 'Serveren avviste tilkoblingen.',
    // not in the protocol's list: the server's "this consultation went on on another connection"
    4409: 'Konsultasjonen fortsetter i et annet vindu eller på en annen tilkobling.',
    4410: 'Konsultasjonen finnes ikke lenger på serveren. Start et nytt opptak.',
    4429: 'Serveren er opptatt. Prøv igjen om litt.',
  };
  const FATAL_ERRORS = new Set(['busy', 'not_paired', 'origin', 'not_yours', 'unknown_session']);
  const APPROVE_ERRORS = new Set(['patient', 'delivery', 'flags_open', 'not_ready']);
  const ROLES = {lege: 'Lege', pasient: 'Pasient', 'pårørende': 'Pårørende'};
  const FLAG_KINDS = {  // as in the desktop app (app/gui/window_texts.py)
    unsupported_number: 'Tall ikke sagt', unsupported_drug: 'Legemiddel ikke sagt',
    unsupported_laterality: 'Side ikke sagt', unsupported_date: 'Dato ikke sagt',
    retracted_value: 'Rettet i samme setning', implausible_value: 'Umulig måleverdi',
    no_evidence: 'Uten kilde', uncertain_asr: 'Usikkert ord',
    added_from_transcript: 'Lagt til fra transkripsjonen', extractive: 'Uttrekk',
    llm_error: 'Språkmodellfeil', empty: 'Tomt', removed_unsupported: 'Fjernet fordi det ikke ble sagt',
  };
  const CONNECTION_TEXT = {idle: '', connecting: 'kobler til', connected: 'tilkoblet', reconnecting: 'kobler til igjen'};

  const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const mmss = (seconds) => {
    const s = Math.max(0, Math.floor(seconds));
    return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  };

  // ------------------------------------------------------------------ state (memory only)
  const S = {
    phase: 'idle',        // idle | starting | recording | stopping | review | discarding
    paused: false,        // recording, but the microphone's audio is dropped (in the worklet)
    paired: null,         // null until /v1/me answered
    templateId: null,
    // audio: absolute sample offsets since the start of the consultation
    ring: null, captured: 0, ackedOffset: 0, sentOffset: 0, seq: 0, overflowed: false,
    // socket
    ws: null, ready: false, session: null, connection: 'idle', reconnects: 0, attempt: 0,
    retryTimer: 0, pumpTimer: 0, outbox: [], stopSent: false,
    // microphone
    media: null, ctx: null, node: null, wakeLock: null, flushed: null,
    // transcript and draft
    segments: new Map(), flags: [], canApprove: false, approving: false, sentText: new Map(),
    discardTimer: 0,
  };

  // Read-only view for tests: counters and states, never any transcript text.
  Object.defineProperty(window, 'scribeState', {
    enumerable: true,
    value: Object.freeze({
      get session() { return S.session; },
      get ackedOffset() { return S.ackedOffset; },
      get sentOffset() { return S.sentOffset; },
      get bufferedSamples() { return S.captured - S.ackedOffset; },
      get capturedSamples() { return S.captured; },
      get connection() { return S.connection; },   // idle | connecting | connected | reconnecting
      get reconnects() { return S.reconnects; },
      get phase() { return S.phase; },
      get paused() { return S.paused; },
    }),
  });

  const active = () => ['starting', 'recording', 'stopping', 'review'].includes(S.phase);

  // ------------------------------------------------------------------ screen
  function render() {
    const p = S.phase;
    document.body.dataset.phase = p;  // CSS: the draft moves above the transcript in review
    const rec = $('record');
    rec.hidden = !S.paired || !['idle', 'starting', 'recording'].includes(p);
    rec.disabled = p === 'starting';
    rec.textContent = p === 'recording' ? 'Stopp' : 'Ta opp';
    rec.classList.toggle('recording', p === 'recording');
    const paused = p === 'recording' && S.paused;
    const pause = $('pause');
    pause.hidden = !S.paired || p !== 'recording';
    pause.textContent = paused ? 'Fortsett' : 'Pause';
    pause.setAttribute('aria-pressed', String(paused));
    pause.classList.toggle('paused', paused);
    $('paused').hidden = !paused;
    $('meters').classList.toggle('paused', paused);
    $('start').hidden = !S.paired || p !== 'idle';
    $('template').disabled = p !== 'idle';
    $('meters').hidden = !['recording', 'stopping'].includes(p);
    $('connection').hidden = p === 'idle';
    $('keep-open').hidden = p !== 'recording';
    $('transcript-panel').hidden = !['recording', 'stopping', 'review'].includes(p);
    $('drafting').hidden = p !== 'stopping';
    $('draft').hidden = p !== 'review';
    $('discard').hidden = !['recording', 'stopping', 'review'].includes(p);
    $('not-paired').hidden = S.paired !== false;
    updateStatus();
    updateApprove();
  }

  function updateStatus() {
    $('elapsed').textContent = mmss(S.captured / RATE);
    const unacked = S.captured - S.ackedOffset;
    let text = CONNECTION_TEXT[S.connection] || '';
    const hint = S.connection === 'connected' ? BUFFER_HINT.connected : BUFFER_HINT.other;
    if (active() && unacked > hint) text += `${text ? ' · ' : ''}${Math.floor(unacked / RATE)} s i buffer`;
    const c = $('connection');
    if (c.textContent !== text) c.textContent = text;
    c.dataset.state = S.connection;
  }

  function showError(message) {
    const e = $('error');
    e.textContent = message;
    e.hidden = !message;
  }

  function showWarning(message) {
    const w = $('warning');
    w.textContent = message || '';
    w.hidden = !message;
  }

  function setConnection(state) {
    S.connection = state;
    updateStatus();
  }

  // ------------------------------------------------------------------ ring buffer
  function writeRing(pcm) {
    const n = pcm.length, at = S.captured % RING;
    const first = Math.min(n, RING - at);
    S.ring.set(pcm.subarray(0, first), at);
    if (first < n) S.ring.set(pcm.subarray(first), 0);
    S.captured += n;
    if (S.captured - S.ackedOffset > RING && !S.overflowed) {
      S.overflowed = true;
      showWarning('Bufferen er full: den eldste lyden serveren ikke har bekreftet, blir slettet.');
    }
  }

  /* Samples before this are gone from the ring (acknowledged, or overwritten when it was full). */
  const availableFrom = () => Math.max(S.ackedOffset, S.captured - RING);

  function readRing(offset, n) {
    const out = new Int16Array(n), at = offset % RING;
    const first = Math.min(n, RING - at);
    out.set(S.ring.subarray(at, at + first));
    if (first < n) out.set(S.ring.subarray(0, n - first), first);
    return out;
  }

  /* The server holds every sample before `offset`: forget them (zeroed, so no audio lingers). */
  function ack(offset) {
    const to = Math.min(Math.max(0, Math.floor(Number(offset)) || 0), S.captured);
    if (to <= S.ackedOffset) return;
    const from = Math.max(S.ackedOffset, S.captured - RING);
    if (S.ring && to > from) {
      const a = from % RING, b = to % RING;
      if (a < b) S.ring.fill(0, a, b);
      else { S.ring.fill(0, a); S.ring.fill(0, 0, b); }
    }
    S.ackedOffset = to;
    if (S.sentOffset < to) S.sentOffset = to;
    updateStatus();
  }

  /* Binary frame: u32 LE sequence number, u32 LE offset of the first sample, PCM16 LE. */
  function frame(seq, offset, pcm) {
    const buf = new ArrayBuffer(8 + 2 * pcm.length);
    const view = new DataView(buf);
    view.setUint32(0, seq >>> 0, true);
    view.setUint32(4, offset >>> 0, true);
    if (LITTLE_ENDIAN) new Int16Array(buf, 8).set(pcm);
    else for (let i = 0; i < pcm.length; i++) view.setInt16(8 + 2 * i, pcm[i], true);
    return buf;
  }

  // ------------------------------------------------------------------ sending
  /* Send all audio not yet sent on this connection, then the queued control messages (so that
   * `stop` always follows the last sample). */
  function pump() {
    const ws = S.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !S.ready) return;
    try {
      while (S.sentOffset < S.captured) {
        if (ws.bufferedAmount > SOCKET_HIGH_WATER) {  // let the socket drain first
          if (!S.pumpTimer) S.pumpTimer = setTimeout(() => { S.pumpTimer = 0; pump(); }, 50);
          return;
        }
        const from = availableFrom();
        let pcm;
        if (S.sentOffset < from) {  // lost when the ring overflowed: silence keeps the offsets
          pcm = new Int16Array(Math.min(CHUNK, from - S.sentOffset));
        } else {
          pcm = readRing(S.sentOffset, Math.min(CHUNK, S.captured - S.sentOffset));
        }
        ws.send(frame(S.seq, S.sentOffset, pcm));
        S.seq = (S.seq + 1) >>> 0;
        S.sentOffset += pcm.length;
      }
      while (S.outbox.length) ws.send(JSON.stringify(S.outbox.shift()));
    } catch (e) {
      // the socket is closing; onclose reconnects and everything unacked is resent
    }
  }

  function sendControl(msg) {
    if (msg.type === 'pause' || msg.type === 'resume') {  // only the newest of the two needs to go
      S.outbox = S.outbox.filter((m) => m.type !== 'pause' && m.type !== 'resume');
    }
    if (msg.type === 'edit_section') {  // only the newest text of a section needs to go
      S.outbox = S.outbox.filter((m) => !(m.type === 'edit_section' && m.section === msg.section));
    }
    S.outbox.push(msg);
    pump();
  }

  // ------------------------------------------------------------------ WebSocket
  function connect() {
    clearTimeout(S.retryTimer);
    if (!active()) return;
    if (S.connection !== 'reconnecting') setConnection('connecting');
    const scheme = location.protocol === 'http:' ? 'ws:' : 'wss:';  // http only for local tests
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${location.host}/v1/capture`);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws.binaryType = 'arraybuffer';
    S.ws = ws;
    S.ready = false;
    let ping = 0;
    ws.addEventListener('open', () => {
      ws.send(JSON.stringify({
        type: 'hello', session: S.session, resume_from: S.session ? S.ackedOffset : 0,
        rate: RATE, template: S.templateId,
      }));
      ping = setInterval(() => {
        if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"ping"}');
      }, PING_MS);
    });
    ws.addEventListener('message', (e) => {
      if (ws !== S.ws || typeof e.data !== 'string') return;
      let msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      if (msg && typeof msg.type === 'string') onMessage(msg);
    });
    ws.addEventListener('close', (e) => {
      clearInterval(ping);
      if (ws !== S.ws) return;  // an old socket we closed ourselves
      S.ws = null;
      S.ready = false;
      if (S.phase === 'discarding') { finish('Konsultasjonen er forkastet.'); return; }
      if (!active()) { setConnection('idle'); return; }
      if (TERMINAL_CLOSE[e.code]) { terminate(TERMINAL_CLOSE[e.code], e.code === 4401); return; }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    setConnection('reconnecting');
    const delay = Math.min(5000, 500 * 2 ** S.attempt);   // 0.5 s, 1 s, 2 s, 4 s, 5 s …
    S.attempt += 1;
    S.reconnects += 1;
    clearTimeout(S.retryTimer);
    S.retryTimer = setTimeout(connect, delay);
  }

  function closeSocket() {
    clearTimeout(S.retryTimer);
    const ws = S.ws;
    S.ws = null;
    S.ready = false;
    if (ws) try { ws.close(1000); } catch (e) { /* already closed */ }
    setConnection('idle');
  }

  function onMessage(m) {
    switch (m.type) {
      case 'ready': onReady(m); break;
      case 'ack': ack(m.offset); break;
      case 'segment': upsertSegment(m); break;
      case 'tentative': $('tentative').textContent = m.text || ''; scrollTranscript(); break;
      case 'speakers': onSpeakers(m.changes || []); break;
      case 'preview': renderPreview(m.sections || []); break;
      case 'draft': onDraft(m); break;
      case 'flags':
        S.flags = m.flags || [];
        S.canApprove = !!m.can_approve;
        renderFlags();
        updateApprove();
        break;
      case 'delivered': onDelivered(m.receipt || {}); break;
      case 'discarded': finish('Konsultasjonen er forkastet. Ingenting er lagret.'); break;
      case 'error': onError(m); break;
      default: break;  // pong, state (the pause is ours: the worklet drops the audio), anything newer
    }
  }

  function onReady(m) {
    S.session = m.session;
    S.ready = true;
    S.attempt = 0;
    // Every sample before resume_from is on the server; resend the rest from there.
    const from = Math.min(Math.max(0, Math.floor(Number(m.resume_from)) || 0), S.captured);
    ack(from);
    S.sentOffset = from;
    setConnection('connected');
    replaceTranscript(m.segments || []);
    // The pause is the phone's: tell a new connection (the server may have lost or missed it).
    S.outbox = S.outbox.filter((x) => x.type !== 'pause' && x.type !== 'resume');
    if (S.phase === 'recording' && S.paused) S.outbox.push({type: 'pause'});
    else if (S.phase === 'recording' && m.state === 'paused') S.outbox.push({type: 'resume'});
    if (S.phase === 'stopping' && S.stopSent && (m.state === 'recording' || m.state === 'paused')) {
      // The server did not get our stop before the drop: stop again, after the resent audio.
      // (In drafting/review it goes on by itself; in review the draft follows this message.)
      S.outbox = S.outbox.filter((x) => x.type !== 'stop');
      S.outbox.push({type: 'stop'});
    } else if (S.phase === 'review' && S.approving && !S.outbox.some((x) => x.type === 'approve')) {
      S.approving = false;  // the approval may have been lost with the connection: allow a retry
      updateApprove();
    }
    pump();
  }

  function onError(m) {
    const code = m.code || '';
    const message = m.message || (code === 'busy' ? 'Serveren er opptatt. Prøv igjen om litt.'
      : `Feil fra serveren (${code || 'ukjent'}).`);
    if ((code === 'gap' || code === 'future_offset') && Number.isFinite(m.expected)) {
      S.sentOffset = Math.min(Math.max(0, m.expected), S.captured);  // resend from there
      pump();
      return;
    }
    if (FATAL_ERRORS.has(code)) { terminate(message, code === 'not_paired'); return; }
    if (APPROVE_ERRORS.has(code)) { S.approving = false; updateApprove(); }
    if (S.phase === 'review') renderFlags();  // re-enables a "Godta" the server did not take
    showError(message);
  }

  // ------------------------------------------------------------------ recording
  async function startRecording() {
    if (S.phase !== 'idle') return;
    showError('');
    showWarning('');
    $('receipt').hidden = true;
    $('notice').hidden = true;
    if (!navigator.mediaDevices || !window.AudioWorkletNode) {
      showError('Denne nettleseren kan ikke ta opp lyd her (krever https og en nyere nettleser).');
      return;
    }
    S.phase = 'starting';
    render();
    let ctx;
    try {
      ctx = new AudioContext();  // native rate; the worklet resamples to 16 kHz
      S.ctx = ctx;
      S.media = await navigator.mediaDevices.getUserMedia({audio: {
        echoCancellation: false, noiseSuppression: false, autoGainControl: true, channelCount: 1,
      }});
      await ctx.audioWorklet.addModule('/static/worklet.js');
      const node = new AudioWorkletNode(ctx, 'scribe-capture', {numberOfInputs: 1, numberOfOutputs: 1});
      node.port.onmessage = onWorkletMessage;
      ctx.createMediaStreamSource(S.media).connect(node);
      node.connect(ctx.destination);  // silent; keeps the node pulled on every browser
      S.node = node;
      await ctx.resume();
      for (const track of S.media.getAudioTracks()) {
        track.addEventListener('ended', () => {
          if (S.phase === 'recording') showError('Mikrofonen ble stoppet av telefonen. Trykk Stopp for å lage utkast av det som er tatt opp.');
        });
      }
    } catch (e) {
      releaseMic();
      S.phase = 'idle';
      render();
      showError(e && e.name === 'NotAllowedError'
        ? 'Appen fikk ikke bruke mikrofonen. Gi tilgang i nettleserens innstillinger og prøv igjen.'
        : `Kunne ikke starte mikrofonen (${(e && e.message) || e}).`);
      return;
    }
    Object.assign(S, {
      ring: new Int16Array(RING), captured: 0, ackedOffset: 0, sentOffset: 0, seq: 0,
      session: null, outbox: [], reconnects: 0, attempt: 0, overflowed: false, stopSent: false,
      paused: false, phase: 'recording',
    });
    replaceTranscript([]);
    render();
    lockScreen();
    connect();
  }

  function onWorkletMessage(e) {
    const d = e.data;
    if (d.type === 'flushed') { if (S.flushed) S.flushed(); return; }
    if (!S.ring || !['recording', 'stopping'].includes(S.phase)) return;
    if (d.type === 'level') {  // paused: the worklet drops the audio and reports only the level
      $('level').value = Math.max(-60, Math.min(0, d.db));
      return;
    }
    if (d.type !== 'pcm') return;
    // Every chunk goes in, also while paused: the worklet posts no audio of the pause, and a
    // chunk still on its way was recorded before it.
    writeRing(new Int16Array(d.pcm));
    $('level').value = Math.max(-60, Math.min(0, d.db));
    updateStatus();
    pump();
  }

  function togglePause() {
    if (S.phase !== 'recording') return;
    S.paused = !S.paused;
    const type = S.paused ? 'pause' : 'resume';
    if (S.node) S.node.port.postMessage({type});  // the worklet drops the audio from here on
    sendControl({type});
    render();
  }

  async function stopRecording() {
    if (S.phase !== 'recording') return;
    S.phase = 'stopping';
    // Stopp while paused: the worklet stays paused, so its flush sends only what came in before
    // the pause; the server takes stop in the paused state too.
    S.paused = false;
    if (S.media) S.media.getTracks().forEach((t) => t.stop());  // the microphone is free at once
    render();
    if (S.node) {  // the last < 100 ms and the filter's tail
      await new Promise((resolve) => {
        S.flushed = resolve;
        S.node.port.postMessage({type: 'flush'});
        setTimeout(resolve, 1000);
      });
      S.flushed = null;
    }
    releaseMic();
    if (S.phase !== 'stopping') return;  // discarded or ended meanwhile
    S.stopSent = true;  // handed to the sender: goes out after the last sample
    sendControl({type: 'stop'});
  }

  function releaseMic() {
    if (S.media) S.media.getTracks().forEach((t) => t.stop());
    if (S.node) { S.node.port.onmessage = null; S.node.disconnect(); }
    if (S.ctx) S.ctx.close().catch(() => {});
    S.media = S.node = S.ctx = null;
    $('level').value = -60;
    if (S.wakeLock) S.wakeLock.release().catch(() => {});
    S.wakeLock = null;
  }

  async function lockScreen() {
    if (!('wakeLock' in navigator) || S.wakeLock || S.phase !== 'recording') return;
    try {
      const lock = await navigator.wakeLock.request('screen');
      if (S.phase !== 'recording') { lock.release().catch(() => {}); return; }
      S.wakeLock = lock;
      lock.addEventListener('release', () => { if (S.wakeLock === lock) S.wakeLock = null; });
    } catch (e) { /* not allowed (battery saver etc.): the warning on screen still applies */ }
  }

  // ------------------------------------------------------------------ transcript
  function segmentElement(seg) {
    const p = el('p', 'segment');
    p.dataset.testid = 'segment';
    p.dataset.id = String(seg.id);
    p.append(el('span', 'time', mmss(seg.start || 0)), ' ');
    const who = ROLES[seg.speaker] || (Number.isInteger(seg.speaker_id) ? `Stemme ${seg.speaker_id + 1}` : '');
    if (who) p.append(el('span', 'who', `${who}:`), ' ');
    const text = el('span', 'text', seg.text || '');
    if (seg.smalltalk) {
      p.classList.add('smalltalk');
      p.title = `Småprat, utelatt fra notatet: ${seg.smalltalk}`;
      const s = el('s');
      s.append(text);
      p.append(s);
    } else {
      p.append(text);
    }
    return p;
  }

  function upsertSegment(m) {
    const seg = {id: m.id, start: m.start, text: m.text, speaker: m.speaker,
                 speaker_id: m.speaker_id, smalltalk: m.smalltalk || ''};
    S.segments.set(seg.id, seg);
    const box = $('transcript');
    const old = box.querySelector(`[data-testid="segment"][data-id="${CSS.escape(String(seg.id))}"]`);
    const node = segmentElement(seg);
    if (old) { old.replaceWith(node); return; }
    // keep id order; normally this is an append just before the tentative tail
    let before = $('tentative');
    for (const child of box.querySelectorAll('[data-testid="segment"]')) {
      if (Number(child.dataset.id) > Number(seg.id)) { before = child; break; }
    }
    box.insertBefore(node, before);
    scrollTranscript();
  }

  function onSpeakers(changes) {
    for (const c of changes) {
      const seg = S.segments.get(c.id);
      if (!seg) continue;
      seg.speaker = c.speaker;
      seg.speaker_id = c.speaker_id;
      upsertSegment(seg);
    }
  }

  function replaceTranscript(segments) {
    S.segments.clear();
    for (const old of $('transcript').querySelectorAll('[data-testid="segment"]')) old.remove();
    $('tentative').textContent = '';
    for (const seg of segments) upsertSegment(seg);
  }

  function scrollTranscript() {
    const box = $('transcript');
    if (box.scrollHeight - box.scrollTop - box.clientHeight < 120) box.scrollTop = box.scrollHeight;
  }

  function renderPreview(sections) {
    const body = $('preview').querySelector('.preview-body');
    body.replaceChildren();
    for (const s of sections) {
      if (!s.text) continue;
      body.append(el('h4', '', s.title || s.id), el('p', '', s.text));
    }
    $('preview').hidden = !body.childElementCount;
  }

  // ------------------------------------------------------------------ draft review
  function onDraft(m) {
    if (!['recording', 'stopping', 'review'].includes(S.phase)) return;  // e.g. while discarding
    S.flags = m.flags || [];
    S.canApprove = !!m.can_approve;
    if (S.phase === 'review') {
      // Sent again after a reconnect: the texts on screen win. An edit the server did not get
      // before the drop goes again; the flags are the server's.
      for (const sec of m.sections || []) {
        const ta = document.getElementById(`section-${sec.id}`);
        if (ta && ta.value !== sec.text) {
          S.sentText.set(sec.id, ta.value);
          sendControl({type: 'edit_section', section: sec.id, text: ta.value});
        }
      }
      renderFlags();
      updateApprove();
      return;
    }
    if (['recording', 'starting'].includes(S.phase)) releaseMic();
    S.phase = 'review';
    S.approving = false;
    $('tentative').textContent = '';
    renderPreview([]);  // the real draft replaces the preview
    const box = $('draft').querySelector('.sections');
    box.replaceChildren();
    S.sentText.clear();
    for (const s of m.sections || []) {
      const id = `section-${s.id}`;
      const label = el('label', 'section-title', s.title || s.id);
      label.htmlFor = id;
      const ta = el('textarea', 'section');
      ta.id = id;
      ta.dataset.testid = 'section';
      ta.dataset.section = s.id;
      ta.rows = Math.min(12, Math.max(3, Math.ceil((s.text || '').length / 40)));
      ta.value = s.text || '';
      S.sentText.set(s.id, ta.value);
      ta.addEventListener('change', () => sendEdit(ta));
      ta.addEventListener('blur', () => sendEdit(ta));
      box.append(label, ta);
    }
    $('extractive').hidden = !m.extractive;
    const dropped = (m.dropped || []).length;
    $('dropped').textContent = dropped
      ? `${dropped} ${dropped === 1 ? 'del' : 'deler'} av samtalen utelatt som småprat (vist overstreket i transkripsjonen).`
      : 'Ingen småprat utelatt.';
    renderFlags();
    render();
  }

  function sendEdit(ta) {
    const id = ta.dataset.section;
    if (S.phase !== 'review' || S.sentText.get(id) === ta.value) return;
    S.sentText.set(id, ta.value);
    sendControl({type: 'edit_section', section: id, text: ta.value});
  }

  function renderFlags() {
    const list = $('flags');
    list.replaceChildren();
    S.flags.forEach((f, i) => {
      const index = Number.isInteger(f.index) ? f.index : i;
      const li = el('li', f.resolved ? 'flag resolved' : 'flag');
      li.dataset.testid = 'flag';
      li.dataset.index = String(index);
      li.append(el('span', 'kind', FLAG_KINDS[f.kind] || f.kind || 'Merknad'));
      if (f.section) {
        const title = document.querySelector(`label[for="section-${CSS.escape(f.section)}"]`);
        li.append(el('span', 'where', ` (${title ? title.textContent : f.section})`));
      }
      li.append(el('span', 'text', f.text || ''));
      if (f.resolved) {
        li.append(el('span', 'done', 'Godtatt'));
      } else {
        const b = el('button', 'accept', 'Godta');
        b.type = 'button';
        b.dataset.testid = 'accept-flag';
        b.addEventListener('click', () => {
          b.disabled = true;  // until the server's flags message
          sendControl({type: 'resolve_flag', index, how: 'accepted'});
        });
        li.append(b);
      }
      list.append(li);
    });
    $('flags-none').hidden = S.flags.length > 0;
  }

  // ------------------------------------------------------------------ patient and approval
  const W1 = [3, 7, 6, 1, 8, 9, 4, 5, 2];
  const W2 = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];

  function checkDigit(digits, weights) {
    let sum = 0;
    for (let i = 0; i < weights.length; i++) sum += Number(digits[i]) * weights[i];
    const r = 11 - (sum % 11);
    return r === 11 ? 0 : r === 10 ? null : r;
  }

  /* The value to send (fødselsnummer/D-nummer without spaces, or Patient/ID), or null. */
  function patientValue(raw) {
    const v = (raw || '').trim();
    if (/^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(v)) return v;
    const d = v.replace(/\s/g, '');
    if (!/^\d{11}$/.test(d)) return null;
    const k1 = checkDigit(d, W1);
    const k2 = k1 === null ? null : checkDigit(d.slice(0, 9) + k1, W2);
    return k2 !== null && d.slice(9) === `${k1}${k2}` ? d : null;
  }

  function updatePatientHint() {
    const input = $('patient');
    const v = input.value.trim();
    // While typing, an incomplete number is not an error yet.
    const typing = document.activeElement === input
      && (/^[\d\s]*$/.test(v) && v.replace(/\s/g, '').length < 11 || 'Patient/'.startsWith(v));
    $('patient-error').hidden = !v || typing || patientValue(v) !== null;
    updateApprove();
  }

  function updateApprove() {
    const ok = S.phase === 'review' && S.canApprove && !S.approving && patientValue($('patient').value) !== null;
    $('approve').disabled = !ok;
    $('approving').hidden = !(S.phase === 'review' && S.approving);
  }

  function approve() {
    const patient = patientValue($('patient').value);
    if (S.phase !== 'review' || !S.canApprove || S.approving || !patient) return;
    document.querySelectorAll('[data-testid="section"]').forEach(sendEdit);  // edits go first
    showError('');
    S.approving = true;
    updateApprove();
    sendControl({type: 'approve', patient});
  }

  /* "HH:MM" in the phone's time zone, or '' for a missing or unreadable time. */
  function clock(iso) {
    const t = iso ? new Date(iso) : null;
    if (!t || Number.isNaN(t.getTime())) return '';
    return `${String(t.getHours()).padStart(2, '0')}:${String(t.getMinutes()).padStart(2, '0')}`;
  }

  function onDelivered(receipt) {
    const r = $('receipt');
    const detail = String(receipt.detail || '');
    const ref = String(receipt.reference || '');
    const at = clock(receipt.delivered_at);
    r.querySelector('.detail').textContent = detail;
    r.querySelector('.time').textContent = at ? `Kl. ${at}` : '';
    r.querySelector('.reference').textContent = ref && !detail.includes(ref) ? ref : '';
    finish('');
    r.hidden = false;
  }

  function discard() {
    if (!window.confirm('Forkaste konsultasjonen? Ingenting blir lagret.')) return;
    releaseMic();
    const ws = S.ws;
    if (ws && S.ready && ws.readyState === WebSocket.OPEN) {
      S.outbox = [];
      S.phase = 'discarding';
      render();
      try { ws.send('{"type":"discard"}'); } catch (e) { /* the close handler finishes */ }
      S.discardTimer = setTimeout(() => finish('Konsultasjonen er forkastet.'), 5000);
    } else {
      // Not connected: forget it here; the server wipes it after its grace period.
      finish('Konsultasjonen er forkastet.');
    }
  }

  // ------------------------------------------------------------------ ending
  /* Wipe everything of the consultation from memory and the screen. */
  function clearConsultation() {
    releaseMic();
    closeSocket();
    clearTimeout(S.discardTimer);
    clearTimeout(S.pumpTimer);
    S.pumpTimer = 0;
    if (S.ring) S.ring.fill(0);
    Object.assign(S, {
      ring: null, captured: 0, ackedOffset: 0, sentOffset: 0, seq: 0, session: null, outbox: [],
      flags: [], canApprove: false, approving: false, overflowed: false, stopSent: false, phase: 'idle',
      paused: false,
    });
    S.sentText.clear();
    replaceTranscript([]);
    $('preview').querySelector('.preview-body').replaceChildren();
    $('preview').hidden = true;
    $('draft').querySelector('.sections').replaceChildren();
    $('flags').replaceChildren();
    $('dropped').textContent = '';
    $('patient').value = '';
    $('patient-error').hidden = true;
    showWarning('');
  }

  function finish(notice) {
    clearConsultation();
    render();
    $('notice').textContent = notice;
    $('notice').hidden = !notice;
  }

  /* The server refused or lost the consultation for good. */
  function terminate(message, notPaired) {
    clearConsultation();
    if (notPaired) S.paired = false;
    render();
    showError(message);
  }

  // ------------------------------------------------------------------ start-up
  async function appPage() {
    $('record').addEventListener('click', () => (S.phase === 'recording' ? stopRecording() : startRecording()));
    $('pause').addEventListener('click', togglePause);
    $('template').addEventListener('change', (e) => { S.templateId = e.target.value || null; });
    $('approve').addEventListener('click', approve);
    $('discard').addEventListener('click', discard);
    $('error').addEventListener('click', () => showError(''));
    $('new').addEventListener('click', () => { $('receipt').hidden = true; });
    const patient = $('patient');
    ['input', 'blur', 'focus'].forEach((t) => patient.addEventListener(t, updatePatientHint));
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState !== 'visible' || S.phase !== 'recording') return;
      lockScreen();
      if (S.ctx && S.ctx.state !== 'running') S.ctx.resume().catch(() => {});
    });
    window.addEventListener('online', () => { if (S.connection === 'reconnecting' && !S.ws) connect(); });
    window.addEventListener('beforeunload', (e) => {  // a reload would lose the unsent audio
      if (active()) { e.preventDefault(); e.returnValue = ''; }
    });
    render();
    if ('serviceWorker' in navigator) {  // the app's own files only, for installing (sw.js)
      navigator.serviceWorker.register('/sw.js', {scope: '/'}).catch(() => {});
    }

    let me;
    try {
      const r = await fetch('/v1/me', {credentials: 'same-origin', cache: 'no-store'});
      if (r.status === 401) { S.paired = false; render(); return; }
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      me = await r.json();
    } catch (e) {
      showError(`Får ikke kontakt med serveren (${e.message}). Last siden på nytt.`);
      return;
    }
    S.paired = true;
    $('user').textContent = me.name || me.user || '';
    try {
      const r = await fetch('/v1/templates', {credentials: 'same-origin', cache: 'no-store'});
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const t = await r.json();
      const list = Array.isArray(t) ? t : t.templates || [];
      const select = $('template');
      select.replaceChildren(...list.map((x) => new Option(x.title || x.id, x.id)));
      const def = !Array.isArray(t) && list.some((x) => x.id === t.default) ? t.default : list[0] && list[0].id;
      if (def) select.value = def;
      S.templateId = def || null;
    } catch (e) {
      showError(`Fant ikke malene (${e.message}). Serverens standardmal brukes.`);
    }
    render();
  }

  // ------------------------------------------------------------------ pairing page
  function deviceName() {
    const ua = navigator.userAgent;
    let dev = /iPhone/.test(ua) ? 'iPhone' : /iPad/.test(ua) ? 'iPad' : '';
    if (!dev && /Android/.test(ua)) {
      const m = ua.match(/Android [\d.]+; ([^;)]+?)(?: Build\/[^;)]*)?[;)]/);
      dev = m && m[1].trim() !== 'K' ? m[1].trim() : 'Android';
    }
    if (!dev) dev = /Macintosh/.test(ua) ? 'Mac' : /Windows/.test(ua) ? 'Windows' : /Linux/.test(ua) ? 'Linux' : 'Ukjent enhet';
    const browser = /Firefox|FxiOS/.test(ua) ? 'Firefox' : /Edg/.test(ua) ? 'Edge'
      : /Chrome|CriOS/.test(ua) ? 'Chrome' : /Safari/.test(ua) ? 'Safari' : '';
    return (browser ? `${dev} (${browser})` : dev).slice(0, 40);
  }

  async function pairPage() {
    // The one-time token leaves the address bar (and history) before anything else happens.
    const token = new URLSearchParams(location.hash.slice(1)).get('t');
    history.replaceState(null, '', location.pathname + location.search);
    const status = $('pair-status');
    const show = (text, ok) => {
      status.textContent = text;
      status.classList.toggle('ok', ok);
      status.classList.toggle('bad', !ok);
    };
    if (!token) { show('Lenken mangler engangskoden. Skann QR-koden på nytt.', false); return; }
    try {
      const r = await fetch('/v1/pair', {
        method: 'POST', credentials: 'same-origin', cache: 'no-store',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({token, device: deviceName()}),
      });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) {
        show(body.error || body.message || `Tilkoblingen mislyktes (HTTP ${r.status}). Be om en ny QR-kode.`, false);
        return;
      }
      show(`Telefonen er koblet til ${body.name || body.user || ''}`.trim(), true);
      $('pair-continue').hidden = false;
      setTimeout(() => location.replace('/'), 3000);
    } catch (e) {
      show('Får ikke kontakt med serveren. Sjekk at telefonen er på riktig nett, og be om en ny QR-kode.', false);
    }
  }

  if (document.documentElement.dataset.page === 'pair') {
    pairPage();
    // A new QR code opened in the same tab only changes the fragment: pair with that token.
    window.addEventListener('hashchange', () => { if (location.hash) pairPage(); });
  } else {
    appPage();
  }
})();
