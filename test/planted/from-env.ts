/**
 * Plants, in the thread that imports it, the bug DIRTYRING_PLANTED_BUG names (planted-bugs.ts):
 * the test worker entries import it before the real worker code.
 */
import { plant } from './planted-bugs.js';

const id = process.env['DIRTYRING_PLANTED_BUG'];
if (id !== undefined && id !== '') plant(id);
