// The new-red alarm's sound: a Web Audio beep. Browsers let a page play sound only after a user gesture, so the
// context is created on the sign-in click (or the 声音 button) and resumed there; until then only the on-screen
// announcement shows. `beeps` counts the beeps played (tests read it from the page).

export class Alarm {
  constructor() {
    this.context = null;
    this.muted = false;
    this.beeps = 0;
    this.onChange = null;
  }

  // Call from a click or submit handler: that is when the browser allows sound.
  arm() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!this.context) this.context = new Context();
    if (this.context.state === "suspended") this.context.resume().then(() => this.onChange?.(), () => {});
    this.onChange?.();
  }

  get allowed() {
    return Boolean(this.context) && this.context.state === "running";
  }

  get state() {
    if (this.muted) return "muted";
    return this.allowed ? "on" : "blocked";
  }

  toggleMute() {
    this.muted = !this.muted;
    this.onChange?.();
  }

  // Two short tones; nothing when muted or not allowed (the announcement shows regardless).
  beep() {
    if (this.muted || !this.allowed) return false;
    const start = this.context.currentTime;
    for (const offset of [0, 0.35]) {
      const tone = this.context.createOscillator();
      const gain = this.context.createGain();
      tone.type = "square";
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.001, start + offset + 0.25);
      tone.connect(gain).connect(this.context.destination);
      tone.start(start + offset);
      tone.stop(start + offset + 0.25);
    }
    this.beeps += 1;
    return true;
  }
}
