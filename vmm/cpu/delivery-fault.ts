/** A fault met while delivering an event: the vector, its error code and why (events.ts, events-legacy.ts). */
export class DeliveryFault {
  constructor(readonly vector: number, readonly error: number, readonly why: string) {}
}
