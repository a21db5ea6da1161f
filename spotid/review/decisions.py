"""Write side of review: every decision in one transaction, audited, undoable, optimistically locked.

Each decision (confirm, reject, new individual, unusable, not a leopard, merge, skip) runs inside
``Catalog.transaction()`` (BEGIN IMMEDIATE, so two reviewers' writes serialise) and writes one
``review_decisions`` row whose ``previous_json`` / ``new_json`` hold the exact state of every row it
touched::

    {"sightings":   {"<id>": {"individual_id": 3, "status": "pending", "probability": 0.61, "version": 4,
                              "set_aside_reason": null, "flank": "left"}},
     "individuals": {"<id>": {"name": "L-0003", "flank": "left", "status": "proposed", "merged_into": null}
                     | null}}       # null: the individual did not exist (created by the decision)

Undo restores ``previous`` exactly (deleting individuals the decision created; only the lock counter
``version`` moves on), writes a new decision row with ``undoes`` set, and sets ``undone_by`` on the
original. It refuses (Conflict) when a later live decision touched the same rows (undo that one
first) or the rows no longer hold what the decision wrote (changed outside review).

Optimistic locking: the page posts the ``sightings.version`` it showed; a different current version
means another tab or reviewer decided first, and the decision is refused with :class:`Conflict`
(HTTP 409) instead of being lost or applied twice. Every change to a sighting, undo included,
increments its version, so an old page can never write over a newer state.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from spotid.catalog import Catalog, flank_seen, now_iso
from spotid.catalog.tables import individuals, reviews, sightings
from spotid.review.queue import NotFound, resolve
from spotid.types import IndividualRow, SightingRow

ACTIONS = ("confirm", "reject", "new", "unusable", "not_leopard", "merge", "skip", "undo")


class Conflict(RuntimeError):
    """The catalog changed since the page was loaded (HTTP 409); reload and decide again."""


class InvalidDecision(ValueError):
    """A decision that cannot apply to these rows (HTTP 400), e.g. merging a left into a right flank."""


@dataclass(frozen=True)
class Decision:
    """One row of ``review_decisions``."""

    id: int
    action: str
    sighting_id: int | None
    reviewer: str
    decided_at: str
    previous: dict
    new: dict
    undoes: int | None = None
    undone_by: int | None = None


_S_FIELDS = ("individual_id", "status", "probability", "version", "set_aside_reason", "flank")
_I_FIELDS = ("name", "flank", "status", "merged_into", "created_at", "created_by")


class Reviewer:
    """Applies one reviewer's decisions to a catalog. Not thread-safe (one Catalog per thread)."""

    def __init__(self, cat: Catalog, reviewer: str):
        if not reviewer.strip():
            raise ValueError("empty reviewer name: pass --reviewer NAME")
        self.cat = cat
        self.reviewer = reviewer.strip()

    # -- state snapshots -------------------------------------------------------------------------
    def _sighting(self, sid: int) -> SightingRow:
        r = sightings.review_state(self.cat, sid)
        if r is None:
            raise NotFound(f"no sighting {sid} in the catalog")
        return r

    def _snapshot(self, sids: list[int], inds: list[int]) -> dict:
        out: dict = {"sightings": {}, "individuals": {}}
        for sid in sids:
            r = self._sighting(sid)
            out["sightings"][str(sid)] = {k: getattr(r, k) for k in _S_FIELDS}
        for iid in inds:
            ind = individuals.get(self.cat, iid)
            out["individuals"][str(iid)] = None if ind is None else {k: getattr(ind, k) for k in _I_FIELDS}
        return out

    def _check_version(self, sid: int, version: int) -> SightingRow:
        cur = self._sighting(sid)
        if int(cur.version) != int(version):
            last = reviews.last_for_sighting(self.cat, sid)
            who = f" ({last['action']} by {last['reviewer']} at {last['decided_at']})" if last else ""
            raise Conflict(f"sighting {sid} changed since this page loaded it{who}: it is now "
                           f"'{cur.status}' (version {cur.version}, page had {version}); reloaded")
        return cur

    def _set_sighting(self, sid: int, **values: Any) -> None:
        if sightings.update_reviewed(self.cat, sid, **values) != 1:
            raise NotFound(f"no sighting {sid} in the catalog")

    def _individual(self, iid: int) -> IndividualRow:
        r = individuals.get(self.cat, iid)
        if r is None:
            raise NotFound(f"no individual {iid} in the catalog")
        return r

    def _record(self, action: str, sid: int | None, prev: dict, new: dict, undoes: int | None = None) -> Decision:
        at = now_iso()
        did = reviews.insert(self.cat, sighting_id=sid, action=action, reviewer=self.reviewer, decided_at=at,
                             previous_json=json.dumps(prev, sort_keys=True), new_json=json.dumps(new, sort_keys=True),
                             undoes=undoes)
        return Decision(did, action, sid, self.reviewer, at, prev, new, undoes)

    def _flank(self, s: SightingRow) -> str | None:
        if s.flank in ("left", "right"):
            return s.flank
        f = sightings.crop_flank(self.cat, s.id)
        return f if f in ("left", "right") else None

    def _fixed_flank(self, s: SightingRow) -> str | None:
        """The flank the sighting is known to show: as :meth:`_flank`, but None when identify only
        inferred it from a match (:func:`~spotid.catalog.flank_seen`), so a person may assign such a
        view to an individual of either flank."""
        crop = sightings.crop_flank(self.cat, s.id)
        return self._flank(s) if flank_seen(crop, s.status) else None

    # -- decisions on one sighting ---------------------------------------------------------------
    def confirm(self, sighting_id: int, version: int, individual_id: int) -> Decision:
        """Assign the sighting to ``individual_id`` (merges resolved), status 'confirmed'. A
        'proposed' individual becomes 'confirmed': a person has now vouched for it."""
        with self.cat.transaction():
            s = self._check_version(sighting_id, version)
            target = self._individual(resolve(self.cat, individual_id))
            flank = self._fixed_flank(s)
            if flank is not None and target.flank != flank:
                raise InvalidDecision(f"{target.name} is a {target.flank} flank and sighting {sighting_id} "
                                      f"shows the {flank} flank: link flanks instead of assigning")
            if target.status in ("rejected", "merged"):
                raise InvalidDecision(f"{target.name} is {target.status}: choose another individual")
            # Only rows the decision changes go in the audit record, so that two confirms to one
            # individual stay independently undoable.
            inds = [target.id] if target.status == "proposed" else []
            prev = self._snapshot([sighting_id], inds)
            p = sightings.candidate_probability(self.cat, sighting_id, individual_id)
            # a sighting without a left/right flank takes its individual's: the person has read the coat
            self._set_sighting(sighting_id, individual_id=target.id, status="confirmed", probability=p,
                               set_aside_reason=None, flank=target.flank)
            if inds:
                individuals.confirm(self.cat, target.id)
            return self._record("confirm", sighting_id, prev, self._snapshot([sighting_id], inds))

    def reject(self, sighting_id: int, version: int) -> Decision:
        """The proposed identity is wrong: status 'rejected', no individual."""
        return self._clear(sighting_id, version, "reject", "rejected")

    def unusable(self, sighting_id: int, version: int) -> Decision:
        """A leopard whose identity cannot be read from this crop (front/back view, blur, too small).
        Not a leopard at all: :meth:`not_leopard`."""
        return self._clear(sighting_id, version, "unusable", "unusable")

    def not_leopard(self, sighting_id: int, version: int) -> Decision:
        """The box is no leopard (another animal, a person, vegetation): status 'rejected', no individual,
        like :meth:`reject`, but the action ``not_leopard`` tells the leopard/other classifier's retraining
        (``spotid export training-crops``) that this crop is "other", which a rejected match does not say."""
        return self._clear(sighting_id, version, "not_leopard", "rejected")

    def _clear(self, sighting_id: int, version: int, action: str, status: str) -> Decision:
        with self.cat.transaction():
            self._check_version(sighting_id, version)
            prev = self._snapshot([sighting_id], [])
            self._set_sighting(sighting_id, individual_id=None, status=status, set_aside_reason=None)
            return self._record(action, sighting_id, prev, self._snapshot([sighting_id], []))

    def new_individual(self, sighting_id: int, version: int, name: str | None = None,
                       flank: str | None = None) -> Decision:
        """The sighting is an animal not yet in the catalog. When identify already proposed a new
        individual for it (status 'proposed'), that one is confirmed (and renamed if ``name``);
        otherwise a new confirmed individual of the sighting's flank is created. ``flank`` ('left' |
        'right'): the flank the person sees, for a sighting the classifier gave none (or a wrong one)."""
        name = (name or "").strip() or None
        if flank is not None and flank not in ("left", "right"):
            raise InvalidDecision(f"flank {flank!r}: a new individual is a 'left' or a 'right' flank")
        with self.cat.transaction():
            s = self._check_version(sighting_id, version)
            flank = flank or self._flank(s)
            if flank is None:
                raise InvalidDecision(f"sighting {sighting_id} has no left/right flank: choose the flank the photo "
                                      "shows (left or right), or mark it unusable")
            if name is not None and individuals.id_by_name(self.cat, name) is not None:
                raise InvalidDecision(f"an individual named {name!r} exists: choose another name or confirm it")
            proposed = None
            if s.individual_id is not None:
                ind = self._individual(resolve(self.cat, s.individual_id))
                n_other = sightings.count_of_individual(self.cat, ind.id, counted_only=True, except_id=sighting_id)
                if ind.status == "proposed" and ind.flank == flank and n_other == 0:
                    proposed = ind
            if proposed is not None:
                prev = self._snapshot([sighting_id], [proposed.id])
                individuals.confirm(self.cat, proposed.id, name=name)
                iid = proposed.id
            else:
                prev = self._snapshot([sighting_id], [])
                iid = individuals.insert(self.cat, name=name or individuals.next_name(self.cat, flank), flank=flank, status="confirmed",
                                         created_at=now_iso(), created_by=f"reviewer:{self.reviewer}")
                prev["individuals"][str(iid)] = None
            self._set_sighting(sighting_id, individual_id=iid, status="confirmed", probability=None,
                               set_aside_reason=None, flank=flank)
            return self._record("new", sighting_id, prev, self._snapshot([sighting_id], [iid]))

    def skip(self, sighting_id: int, version: int | None = None) -> Decision:
        """Put the sighting at the end of this reviewer's queue; changes nothing else."""
        with self.cat.transaction():
            if version is not None:
                self._check_version(sighting_id, version)
            state = self._snapshot([sighting_id], [])
            return self._record("skip", sighting_id, state, state)

    # -- decisions on individuals ----------------------------------------------------------------
    def merge(self, keep_id: int, absorb_id: int, *, sighting_id: int | None = None) -> Decision:
        """``absorb_id`` is the same animal as ``keep_id``: absorb gets status 'merged' and
        ``merged_into = keep``, all its sightings move to keep, and keep becomes 'confirmed'.
        ``sighting_id`` records the queue item the reviewer was looking at (context only)."""
        with self.cat.transaction():
            keep, absorb = self._individual(keep_id), self._individual(absorb_id)
            if keep.id == absorb.id:
                raise InvalidDecision("cannot merge an individual into itself")
            for ind in (keep, absorb):
                if ind.status in ("merged", "rejected"):
                    into = f" into {ind.merged_into}" if ind.merged_into else ""
                    raise Conflict(f"{ind.name} is already {ind.status}{into}; reloaded")
            if keep.flank != absorb.flank:
                raise InvalidDecision(f"{keep.name} is {keep.flank} and {absorb.name} is {absorb.flank}: "
                                      "one individual per flank; a left and a right flank are linked, not merged")
            moved = sightings.ids_of_individual(self.cat, absorb.id)
            inds = [keep.id, absorb.id]
            prev = self._snapshot(moved, inds)
            for sid in moved:
                self._set_sighting(sid, individual_id=keep.id)
            individuals.mark_merged(self.cat, absorb.id, into=keep.id)
            individuals.confirm(self.cat, keep.id)
            return self._record("merge", sighting_id, prev, self._snapshot(moved, inds))

    # -- undo ------------------------------------------------------------------------------------
    def last_undoable(self) -> int | None:
        return reviews.last_undoable_id(self.cat, self.reviewer)

    def undo(self, decision_id: int | None = None) -> Decision:
        """Undo ``decision_id`` (default: this reviewer's latest live decision), restoring exactly
        the state before it. Refused when a later decision changed the same rows."""
        with self.cat.transaction():
            if decision_id is None:
                decision_id = self.last_undoable()
                if decision_id is None:
                    raise NotFound(f"nothing to undo: {self.reviewer} has no live decisions")
            d = get_decision(self.cat, decision_id)
            if d.action == "undo":
                raise InvalidDecision(f"decision {d.id} is an undo; decide again instead of undoing it")
            if d.undone_by is not None:
                raise Conflict(f"decision {d.id} ({d.action}) was already undone by decision {d.undone_by}")
            sids = [int(k) for k in d.new["sightings"]]
            iids = [int(k) for k in d.new["individuals"]]
            current = self._snapshot(sids, iids)
            if d.action == "skip":  # nothing was changed, nothing to restore
                u = self._record("undo", d.sighting_id, current, current, undoes=d.id)
                reviews.set_undone_by(self.cat, d.id, u.id)
                return u
            for kind in ("sightings", "individuals"):
                for key, after in d.new[kind].items():
                    later = self._later_hint(d.id, kind, key)
                    if later or _differs(current[kind][key], after):
                        raise Conflict(f"{kind[:-1]} {key} changed after decision {d.id}"
                                       f"{later or ' (outside review, e.g. a new identify run)'}: undo that first")
            for key, before in d.previous["sightings"].items():
                # decisions recorded before these fields were audited do not carry them
                older = {k: before[k] for k in ("set_aside_reason", "flank") if k in before}
                self._set_sighting(int(key), individual_id=before["individual_id"], status=before["status"],
                                   probability=before["probability"], **older)
            for key, before in d.previous["individuals"].items():
                if before is None:
                    continue
                individuals.restore(self.cat, int(key), name=before["name"], status=before["status"],
                                    merged_into=before["merged_into"])
            for key, before in d.previous["individuals"].items():
                if before is None:  # created by the decision
                    self._delete_created(int(key), d.id)
            after_undo = self._snapshot(sids, [int(k) for k, v in d.previous["individuals"].items() if v is not None])
            for key, before in d.previous["individuals"].items():
                if before is None:
                    after_undo["individuals"][key] = None
            u = self._record("undo", d.sighting_id, current, after_undo, undoes=d.id)
            reviews.set_undone_by(self.cat, d.id, u.id)
            return u

    def _later_hint(self, after_id: int, kind: str, key: str) -> str:
        for r in reviews.live_after(self.cat, after_id):
            if key in json.loads(r["new_json"]).get(kind, {}):
                return f" (decision {r['id']}: {r['action']} by {r['reviewer']})"
        return ""

    def _delete_created(self, iid: int, decision_id: int) -> None:
        refs = {
            "sightings": sightings.count_of_individual,
            "match candidates": sightings.count_candidates_of_individual,
            "merged individuals": individuals.count_merged_into,
            "flank links": individuals.count_flank_links,
        }
        for what, count in refs.items():
            n = count(self.cat, iid)
            if n:
                raise Conflict(f"individual {iid} created by decision {decision_id} now has {n} {what}: "
                               "undo or reassign those first")
        individuals.delete(self.cat, iid)


def _differs(now: dict | None, after: dict | None) -> bool:
    """True when a row no longer holds what a decision wrote. ``version`` is not compared: later
    review decisions are found through the audit log (an undone one restores the data but not the
    counter); this catches changes made outside review."""
    if now is None or after is None:
        return (now is None) != (after is None)
    return any(now.get(k) != after.get(k) for k in after if k != "version")


def get_decision(cat: Catalog, decision_id: int) -> Decision:
    r = reviews.get(cat, decision_id)
    if r is None:
        raise NotFound(f"no review decision {decision_id}")
    return Decision(int(r["id"]), r["action"], r["sighting_id"], r["reviewer"], r["decided_at"],
                    json.loads(r["previous_json"]), json.loads(r["new_json"]), r["undoes"], r["undone_by"])


def recent_decisions(cat: Catalog, limit: int = 50, reviewer: str | None = None) -> list[Decision]:
    return [get_decision(cat, did) for did in reviews.recent_ids(cat, limit, reviewer)]


def describe_change(d: Decision, names: dict[int, str]) -> str:
    """One line for people: what the decision changed (names from ``names``, else '#id')."""
    def nm(i):
        return "—" if i is None else names.get(int(i), f"#{i}")
    parts = []
    for key, after in d.new.get("sightings", {}).items():
        before = d.previous.get("sightings", {}).get(key) or {}
        bits = []
        if before.get("status") != after.get("status"):
            bits.append(f"{before.get('status')} → {after.get('status')}")
        if before.get("individual_id") != after.get("individual_id"):
            bits.append(f"{nm(before.get('individual_id'))} → {nm(after.get('individual_id'))}")
        elif after.get("individual_id") is not None and bits:
            bits[-1] += f" as {nm(after.get('individual_id'))}"
        if bits:
            parts.append(f"#{key}: " + ", ".join(bits))
    for key, after in d.new.get("individuals", {}).items():
        before = d.previous.get("individuals", {}).get(key)
        if before is None and after is not None:
            parts.append(f"created {after['name']} ({after['flank']})")
        elif after is None and before is not None:
            parts.append(f"removed {before['name']}")
        elif before and after and (before["status"], before["merged_into"]) != (after["status"], after["merged_into"]):
            into = f" into {nm(after['merged_into'])}" if after["merged_into"] else ""
            parts.append(f"{after['name']}: {before['status']} → {after['status']}{into}")
    if d.action == "merge" and len(parts) > 4:
        parts = parts[:2] + [f"… {len(parts) - 2} more"]
    return "; ".join(parts) or "no change"
