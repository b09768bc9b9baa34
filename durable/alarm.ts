/**
 * Brings an object's alarm forward to `at` unless it is already due sooner. An object has one
 * alarm, shared by everything it schedules (outbox flushes and back-off, key retirement, rollout
 * evaluation, upload expiry), so no concern may push back another's earlier wake-up. It reads and
 * then writes: await it before scheduling again, as two calls in flight could both read the old time.
 */
export async function alarmNoLaterThan(storage: DurableObjectStorage, at: number): Promise<void> {
  const current = await storage.getAlarm();
  if (current === null || current > at) await storage.setAlarm(at);
}
