/**
 * The reading timer: seconds spent on this read, counted only while the page
 * is visible, starting from what the server already recorded (elapsed_s).
 */
export class ReadingTimer {
  private baseS: number;
  private startedAtMs: number | null = null;

  constructor(initialS: number, private readonly nowMs: () => number = () => performance.now()) {
    if (!(Number.isFinite(initialS) && initialS >= 0)) throw new RangeError(`elapsed seconds must be a finite number >= 0, got ${initialS}`);
    this.baseS = initialS;
  }

  get running(): boolean {
    return this.startedAtMs !== null;
  }

  start(): void {
    if (this.startedAtMs === null) this.startedAtMs = this.nowMs();
  }

  pause(): void {
    if (this.startedAtMs === null) return;
    this.baseS += (this.nowMs() - this.startedAtMs) / 1000;
    this.startedAtMs = null;
  }

  /** Whole seconds so far (what is sent as elapsed_s). */
  get elapsedS(): number {
    const running = this.startedAtMs === null ? 0 : (this.nowMs() - this.startedAtMs) / 1000;
    return Math.floor(this.baseS + running);
  }

  /** Restarts the count from a server value (a newer read was loaded). */
  reset(initialS: number): void {
    const wasRunning = this.running;
    this.startedAtMs = null;
    this.baseS = Math.max(0, initialS);
    if (wasRunning) this.start();
  }
}

/** "m:ss", or "h:mm:ss" from an hour on. */
export function formatElapsed(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
