/** Load @bakery/shm only when the shm backend is chosen. */
export function loadShm(): Promise<typeof import('@bakery/shm')> {
  return import('@bakery/shm');
}
