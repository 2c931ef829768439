/** Event ids are UUIDs off chain and bytes16 on chain (the same 16 bytes, without dashes). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function eventIdToBytes16(eventId: string): string {
  if (!UUID.test(eventId)) throw new Error(`event id "${eventId}" is not a UUID`);
  return '0x' + eventId.replace(/-/g, '').toLowerCase();
}

export function bytes16ToEventId(value: string): string {
  const hex = value.replace(/^0x/, '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new Error(`"${value}" is not a bytes16 event id`);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
