/**
 * Torn reads through the writer module at the CI size (docs/reliability.md §2): 1,000 rotations
 * (STRESS=1: 10,000) under a separate reader process; torn-reads.test.ts runs 300.
 */
import { budget, size } from "./support.js";
import { describeRotations } from "./torn-rotations.js";

describeRotations(size(1_000, 10_000), budget(60_000, 600_000));
