import { GuestMemory } from '../memory';
import { LoadedImage } from './elf-types';

/** Copies a validated image into guest RAM, zero-filling each segment up to p_memsz. */
export function loadImage(mem: GuestMemory, image: LoadedImage): void {
  for (const seg of image.segments) {
    const bytes = new Uint8Array(seg.memSize);
    bytes.set(seg.data);
    if (!mem.write(seg.address, bytes)) {
      throw new RangeError(`segment at 0x${seg.address.toString(16)} does not fit in guest RAM`);
    }
  }
}
