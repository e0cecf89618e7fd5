"""A procedurally rendered Something-Something-style world for the category-splitting benchmark.

Clips of 16 frames show a "hand" (a skin-coloured palm on a sleeve) acting on objects on a table,
seen from the side: a wall at the top, the table below it, one side edge of the table with the
floor beyond it. Every clip is drawn with numpy from a seed, so anyone rebuilds the exact same
data set in about a minute on one core.

Labels read like SSv2 labels. Every fine label is ``coarse action text + " " + modifier text``
("Pushing something" + "from left to right"). The modifiers are shared across actions, and a
modifier looks the same whatever the action (it describes what happens to the *object*), while
the action describes what the *hand* does (where it touches the object, for how long, how the
object's motion unfolds in time):

=================  =============================================================================
modifier family    visual effect (identical for every action that has it)
=================  =============================================================================
direction          net motion of the object: "from left to right" / "from right to left"
                   (horizontal), "up" / "down" (vertical, no size change), "towards the camera" /
                   "away from the camera" (grows and moves down / shrinks and moves up)
relation           a box is present; the object ends "onto something" (resting on its top),
                   "into something" (fully hidden inside it, entered over its rim), "next to
                   something" (beside it), "behind something" (partly hidden, peeking over it)
outcome            "so that it falls off the table": crosses the table's side edge and drops;
                   "so that it almost falls off but doesn't": stops at the edge and wobbles
count              "on its own" / "together with another thing" / "together with two other
                   things": 1 / 2 / 3 identical objects undergo the action side by side
pretending         "but only pretending": the hand goes through the motion, the object never
                   changes (pretending is a modifier so the label stays coarse + modifier)
manner             "so that it spins": the object turns through more than a full turn;
                   "slightly": the action's effect is small (short shift, small lift/rotation...)
novel              five modifiers that belong to ONE action only: "in a circle" (Moving),
                   "on the edge of something so that it falls down" (Putting), "so that it
                   bounces" (Dropping), "in front of something" (Holding), "upside down" (Turning)
=================  =============================================================================

Actions differ in what the hand does, consistently whatever the modifier:

===========  ===================================================================================
Pushing      palm behind the object (on the side it moves away from), in contact, steady speed
Pulling      palm in front of the object (on the side it moves towards), in contact
Moving       diagonal grip from above one side, smooth (eased) carry
Sliding      brief push from behind, then the object glides and slows down on its own
Throwing     grip from above, wind-up, fast swing, release; the object flies (ballistic)
Poking       a finger approaches slowly, touches briefly, retracts; the effect follows the touch
Rolling      brief push from behind, then the object rolls (turns as it moves) at steady speed
Picking up   grip from above, the hand lifts the object(s)
Putting      grip from above, carries the object and lowers it into place, lets go
Dropping     grip from above, carries the object up over the target, lets go: free fall
Holding      side grip, the object is carried in the air into place and held (never let go)
Squeezing    two fingertips close in on both sides, the object gets narrower (partly recovers)
Turning      grip from above, the object rotates in place
Covering     the hand brings a sheet over the object(s) and lets go
Hitting      a fast palm strike from behind with follow-through; the object shoots off
Lifting      palm under the object, the hand raises it
===========  ===================================================================================

With pretending, the hand stops short of the object and mimes its motion (pushing: towards the
object, pulling: away from it, picking up / lifting: upwards, turning: a twist).

Nuisance everywhere: object shape (square, disc, triangle, bar), colours, sizes, positions,
timing and speed, wall/table/floor colours and textures, lighting, sensor noise, camera shake,
static distractor objects and distractor boxes, sleeve and skin colours.

Sizes: 16 actions, 95 fine labels, 23 modifiers (18 shared, 5 novel). Every shared modifier
belongs to at least 4 actions of different kinds (table motions, grasps, carries...), as in SSv2,
so that both halves of a random A/B partition usually hold examples of it: a modifier seen only
by the collapsed half can only be guessed from its text. The full preset renders
95 x (150 + 30 + 40) = 20,900 clips (~1.03 GB as uint8) in about a minute on two cores
(~3 ms a clip); ``WorldConfig.quick()`` renders 4,940.
"""
# One module per section of the world: config -> taxonomy -> clip_spec -> canvas -> scene -> actions -> dataset
# (each imports only the ones before it). This package re-exports the names other code uses.
from catsplit.bench.world.actions import _build, render_clip  # noqa: F401 (_build: see below)
from catsplit.bench.world.clip_spec import ClipSpec
from catsplit.bench.world.config import WORLD_VERSION, WorldConfig
from catsplit.bench.world.dataset import Dataset, Split, clip_rng, generate
from catsplit.bench.world.scene import _Scene  # noqa: F401 (see below)
from catsplit.bench.world.taxonomy import (ACTIONS, MODIFIER_FAMILY, MODIFIERS, PRETRAIN_ACTIONS, SPLITS, Taxonomy,
                                           mixed_labels, mixed_targets, partition, taxonomy)

__all__ = [
    "ACTIONS", "PRETRAIN_ACTIONS", "MODIFIERS", "MODIFIER_FAMILY", "SPLITS", "Taxonomy", "taxonomy", "partition",
    "mixed_labels",
    "mixed_targets", "WorldConfig", "WORLD_VERSION", "ClipSpec", "render_clip", "Split", "Dataset", "clip_rng",
    "generate",
]
# _Scene and _build stay importable from here (not in __all__): tests drive one scene's choreography directly
