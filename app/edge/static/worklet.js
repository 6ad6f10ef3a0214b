/* Ambient scribe – capture worklet (AudioWorkletGlobalScope).
 *
 * Takes the microphone at the device's native rate (the global `sampleRate`), downmixes it to
 * mono, resamples it to 16 kHz and posts 100 ms chunks of PCM16 to the main thread:
 *   {type: "pcm", pcm: ArrayBuffer (Int16, 1600 samples), db: RMS level in dBFS}
 * The last chunk after {type: "flush"} may be shorter; then {type: "flushed"} follows.
 *
 * {type: "pause"} / {type: "resume"}: while paused the input is dropped here, at the render
 * quantum, before the resampler: audio that came in before the pause still goes out (the
 * partial chunk waits in the filter), nothing of the pause does, and the audio after the
 * resume continues the same stream, so the offsets count only recorded samples. Meanwhile
 *   {type: "level", db}
 * comes about every 100 ms so that the level meter still shows the microphone works.
 *
 * Resampling: a polyphase windowed-sinc (Blackman) filter that low-passes and interpolates in
 * one step. Each output sample is computed directly at its fractional input position
 * t = pos + num/den, where den/num are exact integers (the rate ratio reduced by their gcd), so
 * the position carries over the 128-sample render quanta without rounding drift or clicks.
 * The fraction picks the nearest of PHASES precomputed kernels (timing error ≤ 1/512 sample).
 */
'use strict';

const OUT_RATE = 16000;
const CHUNK = 1600;        // 100 ms at 16 kHz
const PHASES = 256;        // kernel phases per input sample

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

/* Kernels for the PHASES + 1 fractional positions 0, 1/PHASES … 1; each has 2·half taps for the
 * input samples pos-half+1 … pos+half and is normalised to unity gain at DC. `fc` is the cutoff
 * in cycles per input sample. */
function makeTable(fc, half) {
  const taps = 2 * half;
  const table = new Float32Array((PHASES + 1) * taps);
  for (let p = 0; p <= PHASES; p++) {
    const phi = p / PHASES;
    let sum = 0;
    for (let j = 0; j < taps; j++) {
      const d = phi + half - 1 - j;                // distance from the output position
      const u = d / half;
      const win = Math.abs(u) >= 1 ? 0 : 0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u);
      const sinc = d === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * d) / (Math.PI * d);
      table[p * taps + j] = sinc * win;
      sum += sinc * win;
    }
    for (let j = 0; j < taps; j++) table[p * taps + j] /= sum;
  }
  return table;
}

class ScribeCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    const rate = Math.round(sampleRate);
    const g = gcd(rate, OUT_RATE);
    this.inc = rate / g;                 // one output sample = inc/den input samples
    this.den = OUT_RATE / g;
    this.bypass = rate === OUT_RATE;
    // Pass band to ~6.4 kHz, stop band from 8 kHz (the new Nyquist); for inputs below 16 kHz
    // the same scaled to the input's Nyquist (interpolation only).
    const base = Math.min(rate, OUT_RATE);
    const cutoff = 0.45 * base;                      // Hz, middle of the transition band
    const width = 0.1 * base;                        // Hz, transition band
    this.half = Math.ceil(2.75 * rate / width);      // Blackman: width ≈ 5.5 / taps (×rate)
    this.taps = 2 * this.half;
    this.table = this.bypass ? null : makeTable(cutoff / rate, this.half);
    // Input history; starts with half-1 zeros so that output 0 sits on input sample 0.
    this.buf = new Float32Array(4 * this.half + 8192);
    this.len = this.half - 1;
    this.pos = this.half - 1;            // integer part of the next output's input position
    this.num = 0;                        // fractional part, in units of 1/den
    this.mono = new Float32Array(128);
    this.out = new Int16Array(CHUNK);
    this.n = 0;
    this.sumSq = 0;
    this.done = false;
    this.paused = false;
    this.levelSumSq = 0;                 // level while paused (float samples, input rate)
    this.levelN = 0;
    this.levelEvery = Math.max(128, Math.round(rate / 10));
    this.port.onmessage = (e) => {
      const type = e.data && e.data.type;
      if (type === 'flush') this.flush();
      else if (type === 'pause') this.paused = true;
      else if (type === 'resume') { this.paused = false; this.levelSumSq = 0; this.levelN = 0; }
    };
  }

  process(inputs) {
    if (this.done) return false;
    const input = inputs[0];
    if (input && input.length && input[0].length) {
      const n = input[0].length;
      if (this.mono.length < n) this.mono = new Float32Array(n);
      const mono = this.mono;
      const ch = input.length;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let c = 0; c < ch; c++) s += input[c][i];
        mono[i] = s / ch;
      }
      if (this.paused) this.level(mono, n);
      else this.push(mono, n);
    }
    return true;  // keep running; the main thread ends us with flush or by closing the context
  }

  /* Paused: the input only feeds the level meter. */
  level(samples, n) {
    for (let i = 0; i < n; i++) this.levelSumSq += samples[i] * samples[i];
    this.levelN += n;
    if (this.levelN < this.levelEvery) return;
    const rms = Math.sqrt(this.levelSumSq / this.levelN);
    const db = rms > 0 ? Math.max(-100, 20 * Math.log10(rms)) : -100;
    this.port.postMessage({type: 'level', db});
    this.levelSumSq = 0;
    this.levelN = 0;
  }

  /* Append n input samples and emit every output sample whose filter window is complete. */
  push(samples, n) {
    if (this.bypass) {
      for (let i = 0; i < n; i++) this.emit(samples[i]);
      return;
    }
    const half = this.half, taps = this.taps, table = this.table;
    if (this.len + n > this.buf.length) {  // never expected; grow rather than lose audio
      const bigger = new Float32Array(2 * (this.len + n));
      bigger.set(this.buf.subarray(0, this.len));
      this.buf = bigger;
    }
    const buf = this.buf;
    buf.set(samples.subarray(0, n), this.len);
    this.len += n;
    while (this.pos + half < this.len) {
      const k = Math.round(this.num * PHASES / this.den) * taps;
      const first = this.pos - half + 1;
      let acc = 0;
      for (let j = 0; j < taps; j++) acc += buf[first + j] * table[k + j];
      this.emit(acc);
      this.num += this.inc;
      const whole = Math.floor(this.num / this.den);
      this.pos += whole;
      this.num -= whole * this.den;
    }
    // Forget the input no later output needs (shift indices; the fraction is untouched).
    const drop = this.pos - half + 1;
    if (drop > 0) {
      buf.copyWithin(0, drop, this.len);
      this.len -= drop;
      this.pos -= drop;
    }
  }

  emit(v) {
    const s = Math.max(-32768, Math.min(32767, Math.round(v * 32768)));
    this.out[this.n++] = s;
    this.sumSq += s * s;
    if (this.n === CHUNK) this.post();
  }

  post() {
    const n = this.n;
    if (!n) return;
    const rms = Math.sqrt(this.sumSq / n) / 32768;
    const db = rms > 0 ? Math.max(-100, 20 * Math.log10(rms)) : -100;
    const pcm = n === CHUNK ? this.out.buffer : this.out.slice(0, n).buffer;
    this.port.postMessage({type: 'pcm', pcm, db}, [pcm]);
    this.out = new Int16Array(CHUNK);
    this.n = 0;
    this.sumSq = 0;
  }

  /* The recording ended: push zeros through the filter so the last real samples come out,
   * post what is left (a short chunk) and stop. */
  flush() {
    if (this.done) return;
    if (!this.bypass) this.push(new Float32Array(this.half), this.half);
    this.post();
    this.port.postMessage({type: 'flushed'});
    this.done = true;
  }
}

registerProcessor('scribe-capture', ScribeCapture);
