/**
 * The tree race at the CI size (docs/reliability.md §7): 60 syncs (STRESS=1: 600) while a
 * separate process swaps public/sub for a symlink out of the tree and back; tree.test.ts runs 10.
 */
import { budget, size } from "./support.js";
import { describeRace } from "./tree-race.js";

describeRace(size(60, 600), budget(240_000, 2_400_000));
