// Public surface of @wtpool/gates (filled in by its issue).
export {};
