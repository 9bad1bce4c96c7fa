/** What the ELF loader produces (vmm/loader/elf.ts: parseElf). */
export interface LoadSegment {
  /** Guest-physical load address (p_paddr). */
  address: number;
  /** File bytes (p_filesz); the rest up to memSize is zero-filled. */
  data: Uint8Array;
  memSize: number;
  flags: number; // PF_X=1 PF_W=2 PF_R=4
}

export interface LoadedImage {
  entry: number;
  segments: LoadSegment[];
  /** Symbol name -> value, from .symtab when present (for tests and scenarios). */
  symbols: Map<string, number>;
}

/** A bad ELF: the message is the one-line diagnosis the CLI prints. */
export class ElfError extends Error {}
