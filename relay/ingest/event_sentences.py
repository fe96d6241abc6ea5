"""Unleash 8's label and markdown sentence per event type, for its event search.

Each sentence is a template of relay/ingest/event_summary.py: `{user}` the event's author
(`createdBy`), `{feature}` and `{project}` markdown links to the flag and the project,
`{change_request}` a link to the change request with where it applies,
`{strategy_title}` and `{strategy_change}` the strategy and what changed in it, and
`{event.a.b}` a field of the event. The words are Unleash's, word for word: the relay's
answer is compared with Unleash's own
(tests/relay/ingest/test_unleash_event_search_parity.py).
An event type not listed here is described as "**<createdBy>** triggered **<type>**".
"""

from __future__ import annotations

from typing import Final

_CR: Final = "change request {change_request}"
_FLAG_IN: Final = "{feature}** in project **{project}**"
_IN_ENV: Final = "{feature}** for the **{event.environment}** environment in project **{project}**"
SENTENCES: Final[dict[str, tuple[str, str]]] = {
    "addon-config-created": (
        "Integration configuration created",
        "**{user}** created a new **{event.data.provider}** integration configuration",
    ),
    "addon-config-deleted": (
        "Integration configuration deleted",
        "**{user}** deleted a **{event.preData.provider}** integration configuration",
    ),
    "addon-config-updated": (
        "Integration configuration updated",
        "**{user}** updated a **{event.preData.provider}** integration configuration",
    ),
    "api-token-created": (
        "API token created",
        "**{user}** created API token **{event.data.username}**",
    ),
    "api-token-deleted": (
        "API token deleted",
        "**{user}** deleted API token **{event.preData.username}**",
    ),
    "change-added": ("Change added", "**{user}** added a change to " + _CR),
    "change-discarded": ("Change discarded", "**{user}** discarded a change in " + _CR),
    "change-edited": ("Change edited", "**{user}** edited a change in " + _CR),
    "change-request-applied": ("Change request applied", "**{user}** applied " + _CR),
    "change-request-approval-added": (
        "Change request approval added",
        "**{user}** added an approval to " + _CR,
    ),
    "change-request-approved": ("Change request approved", "**{user}** approved " + _CR),
    "change-request-cancelled": ("Change request cancelled", "**{user}** cancelled " + _CR),
    "change-request-created": ("Change request created", "**{user}** created " + _CR),
    "change-request-discarded": ("Change request discarded", "**{user}** discarded " + _CR),
    "change-request-rejected": ("Change request rejected", "**{user}** rejected " + _CR),
    "change-request-sent-to-review": (
        "Change request sent to review",
        "**{user}** sent to review " + _CR,
    ),
    "change-request-scheduled": (
        "Change request scheduled",
        "**{user}** scheduled " + _CR + " to be applied at {event.data.scheduledDate}.",
    ),
    "change-request-scheduled-application-success": (
        "Scheduled change request applied successfully",
        "**Successfully** applied the scheduled " + _CR + " by **{user}**.",
    ),
    "change-request-scheduled-application-failure": (
        "Scheduled change request failed",
        "**Failed** to apply the scheduled " + _CR + " by **{user}**.",
    ),
    "change-request-schedule-suspended": (
        "Change request suspended",
        "Change request {change_request} was suspended for the following reason: "
        "{event.data.reason}",
    ),
    "context-field-created": (
        "Context field created",
        "**{user}** created context field **{event.data.name}**",
    ),
    "context-field-deleted": (
        "Context field deleted",
        "**{user}** deleted context field **{event.preData.name}**",
    ),
    "context-field-updated": (
        "Context field updated",
        "**{user}** updated context field **{event.preData.name}**",
    ),
    "feature-archived": (
        "Flag archived",
        "**{user}** archived **{event.featureName}** in project **{project}**",
    ),
    "feature-created": ("Flag created", "**{user}** created **" + _FLAG_IN),
    "feature-deleted": (
        "Flag deleted",
        "**{user}** deleted **{event.featureName}** in project **{project}**",
    ),
    "feature-environment-disabled": ("Flag disabled", "**{user}** disabled **" + _IN_ENV),
    "feature-environment-enabled": ("Flag enabled", "**{user}** enabled **" + _IN_ENV),
    "feature-environment-variants-updated": (
        "Flag variants updated",
        "**{user}** updated variants for **" + _IN_ENV,
    ),
    "feature-metadata-updated": (
        "Flag metadata updated",
        "**{user}** updated **{feature}** metadata in project **{project}**",
    ),
    "feature-completed": (
        "Flag marked as completed",
        "**{feature}** was marked as completed in project **{project}**",
    ),
    "feature-potentially-stale-on": (
        "Flag potentially stale",
        "**{feature}** was marked as potentially stale in project **{project}**",
    ),
    "feature-project-change": (
        "Flag moved to a new project",
        "**{user}** moved **{feature}** from **{event.data.oldProject}** to **{project}**",
    ),
    "feature-revived": ("Flag revived", "**{user}** revived **" + _FLAG_IN),
    "feature-stale-off": (
        "Flag stale marking removed",
        "**{user}** removed the stale marking on **" + _FLAG_IN,
    ),
    "feature-stale-on": (
        "Flag marked as stale",
        "**{user}** marked **{feature}** as stale in project **{project}**",
    ),
    "feature-strategy-add": (
        "Flag strategy added",
        "**{user}** added strategy **{strategy_title}** to **" + _IN_ENV,
    ),
    "feature-strategy-remove": (
        "Flag strategy removed",
        "**{user}** removed strategy **{strategy_title}** from **" + _IN_ENV,
    ),
    "feature-strategy-update": (
        "Flag strategy updated",
        "**{user}** updated **" + _FLAG_IN + " {strategy_change}",
    ),
    "feature-tagged": (
        "Flag tagged",
        "**{user}** tagged **{feature}** with **{event.data.type}:{event.data.value}** "
        "in project **{project}**",
    ),
    "feature-untagged": (
        "Flag untagged",
        "**{user}** untagged **{feature}** with **{event.preData.type}:{event.preData.value}** "
        "in project **{project}**",
    ),
    "group-created": ("Group created", "**{user}** created group **{event.data.name}**"),
    "group-deleted": ("Group deleted", "**{user}** deleted group **{event.preData.name}**"),
    "group-updated": ("Group updated", "**{user}** updated group **{event.preData.name}**"),
    "banner-created": ("Banner created", "**{user}** created banner **{event.data.message}**"),
    "banner-deleted": ("Banner deleted", "**{user}** deleted banner **{event.preData.message}**"),
    "banner-updated": ("Banner updated", "**{user}** updated banner **{event.preData.message}**"),
    "project-created": ("Project created", "**{user}** created project **{project}**"),
    "project-archived": ("Project archived", "**{user}** archived project **{event.project}**"),
    "project-deleted": ("Project deleted", "**{user}** deleted project **{event.project}**"),
    "segment-created": ("Segment created", "**{user}** created segment **{event.data.name}**"),
    "segment-deleted": ("Segment deleted", "**{user}** deleted segment **{event.preData.name}**"),
    "segment-updated": ("Segment updated", "**{user}** updated segment **{event.preData.name}**"),
    "service-account-created": (
        "Service account created",
        "**{user}** created service account **{event.data.name}**",
    ),
    "service-account-token-created": (
        "Service account token created",
        "**{user}** created a token for service account **{event.data.ownerId}**",
    ),
    "service-account-token-deleted": (
        "Service account token deleted",
        "**{user}** deleted a token for service account **{event.data.ownerId}**",
    ),
    "service-account-deleted": (
        "Service account deleted",
        "**{user}** deleted service account **{event.preData.name}**",
    ),
    "service-account-updated": (
        "Service account updated",
        "**{user}** updated service account **{event.preData.name}**",
    ),
    "user-created": ("User created", "**{user}** created user **{event.data.name}**"),
    "user-deleted": ("User deleted", "**{user}** deleted user **{event.preData.name}**"),
    "user-updated": ("User updated", "**{user}** updated user **{event.preData.name}**"),
    "release-plan-added": (
        "Release plan added",
        "**{user}** added release plan **{event.data.name}** to **" + _IN_ENV,
    ),
    "release-plan-removed": (
        "Release plan removed",
        "**{user}** removed release plan **{event.preData.name}** from **" + _IN_ENV,
    ),
    "release-plan-milestone-started": (
        "Release plan milestone started",
        "**{user}** started milestone **{event.data.milestoneName}** in release plan "
        "**{event.data.name}** for **" + _IN_ENV,
    ),
    "release-plan-progressions-paused": (
        "Release plan progressions paused",
        "**Release plan progressions paused** by safeguard for **{feature}** in the "
        "**{event.environment}** environment in project **{project}**",
    ),
    "release-plan-progressions-resumed": (
        "Release plan progressions resumed",
        "**{user}** resumed release plan progressions for **{feature}** in the "
        "**{event.environment}** environment in project **{project}**",
    ),
    "user-access-request-registered": (
        "User access request registered",
        "**{event.data.email}** requested access to Unleash",
    ),
    "user-access-request-approved": (
        "User access request approved",
        "**{user}** approved access request for **{event.data.email}**",
    ),
    "user-access-request-rejected": (
        "User access request rejected",
        "**{user}** rejected access request for **{event.data.email}**",
    ),
}
