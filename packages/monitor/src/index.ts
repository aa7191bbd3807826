// Public surface of @wtpool/monitor (filled in by its issue).
export {};
