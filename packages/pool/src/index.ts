// Public surface of @wtpool/pool (filled in by its issue).
export {};
