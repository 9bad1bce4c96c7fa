/** Trace events (defined with the other shared types in vmm/vmm-types.ts). */
export type { TraceEvent, TraceSink } from '../vmm-types';
