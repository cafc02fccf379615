"""Every way of starting a job goes through here: /video and the Retry button alike.

The steps, in the order a command takes them:

1. `check`: may this member start a video here, are the options valid for the model, is the
   model allowed on this server, do the server's safety controls let it through (bot.safety:
   age-restricted channels, blocked words, the prompt screen, which is slow: callers defer
   first when `screens` says so), and which limits apply. Raises a UserFacingError whose text
   is the member's answer.
2. `precheck` (only when images are attached): a quick quota refusal before the slow download.
3. `reserve`: store the job if the quota allows it, atomically with the usage it reads.
4. The caller sends its first response, then reports how that went:
   `accepted(job, message_id)` hands the job to the engine, `abandoned(job)` cancels it.

`retry` and `remix` run 1 and 3 for a finished job's options, with a new seed or new words.

No discord, aiosqlite or httpx here: the caller turns an interaction into a `Requester` and does
all the Discord I/O. Besides the engine, this is the only code that changes a job's state.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot.domain.catalog import Catalog, ModelSpec
from bot.domain.errors import UserFacingError
from bot.domain.options import VideoOptions, VideoRequest, check_words, validate_options
from bot.log_context import about_job
from bot.safety import SafetyGuard
from storage.models import (
    IMAGE_KINDS,
    Derivation,
    Flow,
    Job,
    JobState,
    MediaLink,
    NewJob,
    VideoParams,
    media_kinds,
)

if TYPE_CHECKING:
    # Types only: at run time the intake reaches storage through what it is given.
    from bot.gatekeeper import Gatekeeper
    from storage.models import EffectiveLimits

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
THUMBNAIL_NAME = "first_frame.jpg"
ABANDONED = "Discord did not accept the bot's answer in time."


class IntakeStore(Protocol):
    """What the intake needs of the jobs repository (storage.jobs.JobRepository)."""

    async def transition(
        self, job_id: int, expected: JobState, new_state: JobState, now: float, **changes: object
    ) -> Job | None:
        """The updated job, or None when the job was not in `expected` (someone else won)."""

    async def update(
        self, job_id: int, expected: JobState, now: float, **changes: object
    ) -> Job | None:
        """As `transition` without a change of state: None when the job left `expected`."""

    async def media(self, job_id: int) -> dict[str, bytes]:
        """The job's stored images by kind; empty when it had none or they were pruned."""

    async def links(self, job_id: int) -> list[MediaLink]:
        """The job's video and soundtrack links; empty when it had none."""

    async def create(
        self,
        new_job: NewJob,
        media: Mapping[str, bytes] | None = None,
        links: Sequence[MediaLink] = (),
    ) -> Job:
        """Store a job without any quota check (a Join, which uses none)."""

    async def chain(self, chain_id: int) -> list[Job]:
        """The chain's jobs in part order."""


class JobQueue(Protocol):
    """What the intake needs of the engine (bot.engine.JobEngine)."""

    def enqueue(self, job: Job) -> None:
        """Start tracking a stored, answered job; a job already in a final state is ignored."""


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks for a video, and where: what the intake needs of a Discord interaction."""

    guild_id: int
    channel_id: int
    user_id: int
    role_ids: tuple[int, ...]
    application_id: int
    interaction_id: int
    # The interaction's token: the job's message is edited with it for 15 minutes.
    interaction_token: str
    # Bytes per file this interaction may upload; None when Discord did not say.
    upload_limit: int | None = None
    # The member's language (bot.i18n's catalog name): their job's message speaks it.
    locale: str = "en"
    # The channel (a thread: its parent) is age-restricted (NSFW); unknown counts as not.
    nsfw: bool = False

    def __repr__(self) -> str:
        # The token is a credential for 15 minutes: keep it out of logs and reprs.
        return (
            f"Requester(guild_id={self.guild_id}, channel_id={self.channel_id}, "
            f"user_id={self.user_id})"
        )


@dataclass(frozen=True, slots=True)
class Admission:
    """A request `check` let through: the checked options and the member's limits."""

    requester: Requester
    request: VideoRequest
    limits: EffectiveLimits


@dataclass(frozen=True, slots=True)
class Reservation:
    """A stored job and the first frame its first response shows (None when it has none)."""

    job: Job
    first_frame: bytes | None


class Intake:
    def __init__(
        self,
        gatekeeper: Gatekeeper,
        jobs: IntakeStore,
        catalog: Catalog,
        engine: JobQueue,
        default_model: str,
        flow_defaults: Mapping[str, str] | None = None,
        safety: SafetyGuard | None = None,
    ) -> None:
        self._gate = gatekeeper
        self._jobs = jobs
        self._catalog = catalog
        self._engine = engine
        self._default_model = default_model
        # flow ("animate", "edit") -> the bot-wide model for it (ANIMATE_MODEL, EDIT_MODEL)
        self._flow_defaults = dict(flow_defaults or {})
        self._safety = safety

    def model_name(self, model_id: str) -> str:
        spec = self._catalog.get(model_id)
        return spec.name if spec else model_id

    async def check(self, requester: Requester, options: VideoOptions) -> Admission:
        """Admit the member, check the options and the model, and read their limits.

        Raises NotAllowedError (blocked, wrong channel, a safety control) or InvalidOptionError
        (an option, or a model this server does not allow); nothing is stored.
        """
        await self._gate.admit(requester.guild_id, requester.channel_id, requester.user_id)
        request = validate_options(options, self._catalog, self._default_model)
        await self._gate.check_model(requester.guild_id, request.model)
        await self._check_safety(requester, request.params)
        return Admission(requester, request, await self._limits(requester))

    async def screens(self, guild_id: int) -> bool:
        """True when this server's prompts go to the moderation model: answer (defer) first."""
        return self._safety is not None and await self._safety.screens(guild_id)

    async def check_place(self, requester: Requester) -> None:
        """Refuse outside age-restricted channels where the server asks for them (the menus
        and buttons that open a form check this before showing it)."""
        if self._safety is not None:
            r = requester
            await self._safety.check_place(r.guild_id, r.channel_id, r.user_id, r.nsfw)

    async def _check_safety(self, requester: Requester, params: VideoParams) -> None:
        if self._safety is not None:
            r = requester
            await self._safety.check(
                r.guild_id, r.channel_id, r.user_id, r.nsfw, params.prompt, params.negative_prompt
            )

    async def flow_model(self, guild_id: int, flow: Flow) -> str:
        """The model id a flow uses on this server: the server's choice, else the bot's."""
        chosen = await self._gate.flow_model(guild_id, flow)
        return chosen or self._flow_defaults.get(flow) or self._default_model

    async def precheck(self, admission: Admission) -> None:
        """Raise QuotaExceeded if a limit already refuses it (`reserve` checks again, atomically).

        Only worth it before something slow, such as downloading images.
        """
        requester, request = admission.requester, admission.request
        await self._gate.precheck(
            requester.guild_id,
            requester.user_id,
            admission.limits,
            cost=request.model.estimate_usd(request.params.seconds),
            seconds=request.params.seconds,
        )

    async def reserve(
        self,
        admission: Admission,
        media: Mapping[str, bytes],
        links: Sequence[MediaLink] = (),
        derivation: Derivation | None = None,
    ) -> Job:
        """Store the job, queued, with its prepared images and checked links; raise
        QuotaExceeded if over a limit.

        The job is not the engine's until `accepted`: the caller answers the member first.
        """
        thumbnail = THUMBNAIL_NAME if "first_frame" in media else None
        new_job = _new_job(admission.requester, admission.request, media, thumbnail, links)
        new_job = dataclasses.replace(new_job, derivation=derivation)
        job = await self._gate.reserve(new_job, admission.limits, media, links)
        with about_job(job):
            log.info(
                "Accepted: %s %s %ds for member %d in server %d",
                job.model,
                job.params.size,
                job.params.seconds,
                job.user_id,
                job.guild_id,
            )
        return job

    async def retry(self, source: Job, requester: Requester) -> Reservation:
        """A new job with `source`'s options and media and a new seed, counted like /video.

        Refuses (UserFacingError) when the member may not start a video here, the images were
        pruned or a link can no longer be had, the model is gone or no longer allowed, or a
        limit is reached.
        """
        params = dataclasses.replace(source.params, seed=random.randrange(2**32))
        return await self._again(source, requester, params, Derivation.RETRY)

    async def remix(
        self, source: Job, requester: Requester, prompt: str, negative_prompt: str | None
    ) -> Reservation:
        """`source` with new words: the same model, frame, length, media and seed, so only the
        prompt and negative prompt change. Counted like /video; refused as `retry` is."""
        spec = self._catalog.get(source.model)
        if spec is None:
            raise UserFacingError("intake.model_gone", model=source.model)
        words, negative = check_words(spec, prompt, negative_prompt)
        params = dataclasses.replace(source.params, prompt=words, negative_prompt=negative)
        return await self._again(source, requester, params, Derivation.REMIX)

    async def extend(
        self, source: Job, requester: Requester, prompt: str, clip: MediaLink | None
    ) -> Reservation:
        """The next part of `source`'s chain: a new job that continues its clip.

        With `clip` (the delivered video's link, for a model that continues videos) it is sent
        as the clip to continue; otherwise the job starts from `source`'s last frame, taken by
        the engine before it is sent, on `source`'s model or, where that takes no first frame,
        the server's image-to-video model. The frame and length stay where the model allows,
        and the seed is new. Counted like /video.
        """
        chain_id, part = await self._next_part(source)
        spec = self._catalog.get(source.model)
        if clip is None and (spec is None or not spec.first_frame):
            model = await self.flow_model(requester.guild_id, "animate")
        else:
            model = source.model
        kind = "video" if clip is not None else "first_frame"
        options = _same_frame(source, self._catalog.get(model), prompt, model, kind)
        admission = await self.check(requester, options)
        params = dataclasses.replace(
            admission.request.params, seed=random.randrange(2**32), media=(kind,)
        )
        request = VideoRequest(admission.request.model, params)
        links = [clip] if clip is not None else []
        new_job = dataclasses.replace(
            _new_job(requester, request, {}, None, links),
            params=params,  # the first frame is made later: media says it will be there
            parent_id=source.id,
            derivation=Derivation.EXTEND,
            chain_id=chain_id,
            chain_part=part,
        )
        job = await self._gate.reserve(new_job, admission.limits, {}, links)
        with about_job(job):
            log.info("Accepted: part %d of chain %d (from job %d)", part, chain_id, source.id)
        return Reservation(job, None)

    async def join(self, source: Job, requester: Requester) -> Job:
        """A job that stitches `source`'s chain, up to `source`, into one video.

        Made by the bot from videos already delivered: no Together call, and no quota used
        (so only blocks, channels and the age-restricted rule are checked). Refuses a chain with
        fewer than two parts.
        """
        await self._gate.admit(requester.guild_id, requester.channel_id, requester.user_id)
        await self.check_place(requester)
        chain_id = source.chain_id or source.id
        parts = [
            job
            for job in await self._jobs.chain(chain_id)
            if job.derivation is not Derivation.JOIN
            and (job.chain_part or 1) <= (source.chain_part or 1)
        ]
        if len(parts) < 2:
            raise UserFacingError("intake.one_part")
        if any(
            job.state is not JobState.DELIVERED or job.delivery != "attachment" for job in parts
        ):
            raise UserFacingError("intake.parts_not_posted")
        seconds = sum(job.params.seconds for job in parts)
        params = dataclasses.replace(
            source.params,
            prompt=f"The {len(parts)} parts of #{chain_id}, joined",
            negative_prompt=None,
            seconds=seconds,
            output_format="MP4",
            media=(),
        )
        spec = self._catalog.get(source.model)
        new_job = dataclasses.replace(
            _new_job(requester, VideoRequest(spec or _any_spec(self._catalog), params), {}, None),
            model=source.model,
            estimated_cost_usd=0.0,
            parent_id=source.id,
            derivation=Derivation.JOIN,
            chain_id=chain_id,
            chain_part=source.chain_part or 1,
        )
        job = await self._jobs.create(new_job)
        with about_job(job):
            log.info("Accepted: joins %d parts of chain %d", len(parts), chain_id)
        return job

    async def _next_part(self, source: Job) -> tuple[int, int]:
        """The chain `source` heads or ends, and the part number after it."""
        if source.state is not JobState.DELIVERED or source.delivery != "attachment":
            raise UserFacingError("intake.extend_posted_only")
        chain_id = source.chain_id or source.id
        part = (source.chain_part or 1) + 1
        later = [
            job
            for job in await self._jobs.chain(chain_id)
            if job.derivation is Derivation.EXTEND
            and job.chain_part == part
            and job.state not in (JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT)
        ]
        if later:
            raise UserFacingError("intake.extended_already", job=later[0].id)
        return chain_id, part

    async def _again(
        self, source: Job, requester: Requester, params: VideoParams, how: Derivation
    ) -> Reservation:
        """A new job made from `source` with `params`, and `source`'s images and links."""
        await self._gate.admit(requester.guild_id, requester.channel_id, requester.user_id)
        if source.derivation is Derivation.JOIN:
            raise UserFacingError("intake.join_again")
        media = await self._jobs.media(source.id)
        images = [kind for kind in source.params.media if kind in IMAGE_KINDS]
        if source.media_pruned_at is not None or any(kind not in media for kind in images):
            # Without them it would be a different video, and billed.
            raise UserFacingError("intake.images_gone")
        spec = self._catalog.get(source.model)
        if spec is None:
            raise UserFacingError("intake.model_gone", model=source.model)
        await self._gate.check_model(requester.guild_id, spec)
        await self._check_safety(requester, params)
        limits = await self._limits(requester)
        links = await self._jobs.links(source.id)
        if any(_gone(link, time.time()) for link in links):
            raise UserFacingError("intake.links_gone")
        request = VideoRequest(spec, params)
        thumbnail = source.thumbnail if "first_frame" in media else None
        new_job = dataclasses.replace(
            _new_job(requester, request, media, thumbnail, links),
            parent_id=source.id,
            derivation=how,
        )
        job = await self._gate.reserve(new_job, limits, media, links)
        with about_job(job):
            log.info("Accepted: a %s of job %d", how.value, source.id)
        return Reservation(job, media.get("first_frame"))

    async def accepted(self, job: Job, message_id: int | None) -> Job:
        """The first response reached Discord: record its message and hand the job over.

        Returns the job as the engine got it (with its message id, unless the job left the
        queue meanwhile, when the engine gets the job as reserved and settles it).
        """
        updated = await self._jobs.update(
            job.id, JobState.QUEUED, time.time(), message_id=message_id
        )
        job = updated or job
        self._engine.enqueue(job)
        return job

    async def abandoned(self, job: Job) -> None:
        """The first response failed: nobody saw the job, so it must never be submitted.

        Cancelled (left queued, the next start would submit it, and bill it, with no message
        to show it), and its interaction token blanked.
        """
        await self._jobs.transition(
            job.id,
            JobState.QUEUED,
            JobState.CANCELLED,
            time.time(),
            failure_reason=ABANDONED,
            interaction_token="",
        )

    async def _limits(self, requester: Requester) -> EffectiveLimits:
        return await self._gate.limits_for(requester.guild_id, requester.role_ids)


def _same_frame(
    source: Job, spec: ModelSpec | None, prompt: str, model: str, kind: str
) -> VideoOptions:
    """Options for a continuation: `source`'s frame and length where `spec` allows them."""
    params = source.params
    size = resolution = ratio = seconds = None
    if spec is not None:
        if spec.dimensions == "width_height" and params.size in spec.sizes:
            size = params.size
        if spec.dimensions == "resolution_ratio":
            resolution = params.resolution if params.resolution in spec.resolutions else None
            ratio = params.ratio if params.ratio in spec.ratios else None
        seconds = params.seconds if params.seconds in spec.durations else None
    return VideoOptions(
        prompt=prompt,
        model=model,
        size=size,
        resolution=resolution,
        ratio=ratio,
        seconds=seconds,
        negative_prompt=params.negative_prompt,
        attachments={kind: 0},
    )


def _any_spec(catalog: Catalog) -> ModelSpec:
    return next(iter(catalog))


def _gone(link: MediaLink, now: float) -> bool:
    """A link that has expired and that no message can renew."""
    return not link.refreshable and link.expires_at is not None and link.expires_at <= now


def _new_job(
    requester: Requester,
    request: VideoRequest,
    media: Mapping[str, bytes],
    thumbnail: str | None,
    links: Sequence[MediaLink] = (),
) -> NewJob:
    now = time.time()
    return NewJob(
        guild_id=requester.guild_id,
        channel_id=requester.channel_id,
        user_id=requester.user_id,
        application_id=requester.application_id,
        interaction_id=requester.interaction_id,
        interaction_token=requester.interaction_token,
        upload_limit=requester.upload_limit or DEFAULT_UPLOAD_LIMIT,
        model=request.model.id,
        # The images and links stored with the job are the ones it references.
        params=dataclasses.replace(
            request.params, media=media_kinds([*media, *(link.kind for link in links)])
        ),
        estimated_cost_usd=request.model.estimate_usd(request.params.seconds),
        thumbnail=thumbnail,
        created_at=now,
        deadline_at=now + request.model.timeout_minutes * 60,
        locale=requester.locale,
    )
