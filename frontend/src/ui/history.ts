/**
 * One undo/redo history for the whole workspace: brush strokes, mask
 * operations, measurement creation, edits and deletions. Each entry knows how
 * to undo and redo itself; a new entry drops whatever could be redone.
 */
export interface Command {
  /** what the action did, for the toolbar's tooltip ("Undo brush stroke") */
  label: string;
  undo(): void;
  redo(): void;
}

export class History {
  private readonly done: Command[] = [];
  private readonly undone: Command[] = [];
  private readonly listeners = new Set<() => void>();

  constructor(private readonly limit = 100) {
    if (!(limit >= 1)) throw new RangeError(`history limit must be at least 1, got ${limit}`);
  }

  /** Records an action that has already been applied. */
  push(command: Command): void {
    this.done.push(command);
    if (this.done.length > this.limit) this.done.shift();
    this.undone.length = 0;
    this.emit();
  }

  get canUndo(): boolean {
    return this.done.length > 0;
  }

  get canRedo(): boolean {
    return this.undone.length > 0;
  }

  get undoLabel(): string | null {
    return this.done[this.done.length - 1]?.label ?? null;
  }

  get redoLabel(): string | null {
    return this.undone[this.undone.length - 1]?.label ?? null;
  }

  undo(): Command | null {
    const command = this.done.pop();
    if (!command) return null;
    command.undo();
    this.undone.push(command);
    this.emit();
    return command;
  }

  redo(): Command | null {
    const command = this.undone.pop();
    if (!command) return null;
    command.redo();
    this.done.push(command);
    this.emit();
    return command;
  }

  /** Forgets everything (after loading another version from the server). */
  clear(): void {
    this.done.length = 0;
    this.undone.length = 0;
    this.emit();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }
}
