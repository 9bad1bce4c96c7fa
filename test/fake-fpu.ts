/** The FPU state the test fakes of VmApi keep: one FXSAVE image per vCPU, checked as the real VMs check it. */
import { checkFpuImage } from '../vmm/api/request-checks';

export class FakeFpuStates {
  private readonly images = new Map<number, Uint8Array>();

  /** A vCPU's image; FCW 0x37F and MXCSR 0x1F80 (as after FNINIT and reset) until written. */
  get(vcpu: number): Uint8Array {
    let img = this.images.get(vcpu);
    if (!img) {
      img = new Uint8Array(512);
      img[0] = 0x7f; img[1] = 0x03; img[24] = 0x80; img[25] = 0x1f; img[28] = 0xff; img[29] = 0xff;
      this.images.set(vcpu, img);
    }
    return img.slice();
  }

  set(vcpu: number, image: Uint8Array): void {
    checkFpuImage(image);
    this.images.set(vcpu, image.slice());
  }
}
