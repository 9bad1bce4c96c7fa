/** Control-register bits (SDM Vol. 3 2.5). Pure facts. */
export const CR0_PE = 1 << 0;
export const CR0_MP = 1 << 1;
export const CR0_EM = 1 << 2;
export const CR0_TS = 1 << 3;
/** Extension type: reserved and hard-wired to 1 since the P6 family (reads 1, writes ignored). */
export const CR0_ET = 1 << 4;
export const CR0_NE = 1 << 5;
export const CR0_WP = 1 << 16;
export const CR0_AM = 1 << 18;
export const CR0_PG = 0x80000000;

export const CR4_PSE = 1 << 4;
export const CR4_DE = 1 << 3;
export const CR4_PAE = 1 << 5;
export const CR4_PGE = 1 << 7;
export const CR4_OSFXSR = 1 << 9;
export const CR4_OSXMMEXCPT = 1 << 10;
export const CR4_UMIP = 1 << 11;
export const CR4_OSXSAVE = 1 << 18;
export const CR4_SMEP = 1 << 20;
export const CR4_SMAP = 1 << 21;
export const CR4_PCIDE = 1 << 17;
/** CR3 bit 63 as a MOV-to-CR3 source with CR4.PCIDE=1: keep the TLB entries (not stored in CR3). */
export const CR3_NOFLUSH_HI = 0x80000000;
