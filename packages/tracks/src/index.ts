// Public surface of @wtpool/tracks (filled in by its issue).
export {};
