/** Control-register bits (SDM Vol. 3 2.5). Pure facts. */
export const CR4_DE = 1 << 3;
