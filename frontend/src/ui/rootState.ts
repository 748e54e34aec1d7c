/**
 * The data-attributes on #viewer-root that automated tests wait on. All
 * writes go through here so the names stay in one place.
 */
export type ViewerState = 'loading' | 'ready' | 'error';
export type ViewportRole = 'sagittal' | 'sagittal-t1' | 'axial';

export class RootState {
  constructor(private readonly root: HTMLElement) {}

  setState(state: ViewerState, error?: string): void {
    // "error" sticks: a later success elsewhere must not hide a failure.
    if (this.root.dataset.state === 'error' && state !== 'error') return;
    this.root.dataset.state = state;
    if (error) this.root.dataset.error = error;
  }

  get state(): string | undefined {
    return this.root.dataset.state;
  }

  imageRendered(role: ViewportRole): void {
    this.root.setAttribute(`data-image-rendered-${role}`, 'true');
  }

  /** Any other hook: data-<name> on #viewer-root (null removes it). */
  set(name: string, value: string | null): void {
    if (value === null) this.root.removeAttribute(`data-${name}`);
    else this.root.setAttribute(`data-${name}`, value);
  }

  overlayRendered(): void {
    this.root.dataset.overlayRendered = 'true';
  }

  readVersion(version: number): void {
    this.root.dataset.readVersion = String(version);
  }

  submitted(submitted: boolean): void {
    if (submitted) this.root.dataset.submitted = 'true';
    else delete this.root.dataset.submitted;
  }
}
