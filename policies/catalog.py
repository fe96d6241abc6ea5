"""The Unleash event types as data: one row per type, its resource and action names.

A resource template is a specifier-shaped string whose keys are `*` (global: the
event does not say), a literal, or `{path|path...}`: the first of those event fields
(`project`, `data.name`, `preData.id`, ...) that holds a non-empty string or a number.
Bulk events (`drop-*`, SCIM deletions) are global in every key. The row's kind is
the type of its last segment. `ld_actions` are LaunchDarkly's
action names where LaunchDarkly has the concept, the relay's own camelCase otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["UNLEASH_EVENT_TYPES", "EventType"]


@dataclass(frozen=True)
class EventType:
    """One Unleash event type: what it is about, and what it does to it."""

    name: str
    resource: str
    ld_actions: tuple[str, ...]
    title_verb: str

    @property
    def kind(self) -> str:
        """The resource type of the event's subject (the template's last segment)."""
        return self.resource.rsplit(":", 1)[-1].split("/", 1)[0]


def _first(*paths: str) -> str:
    """A template key: the first of these event fields that holds a value."""
    return "{" + "|".join(paths) + "}"


_NAME_OR_ID = _first("data.name", "preData.name", "data.id", "preData.id")
FLAG = "proj/{project}:env/{environment}:flag/{featureName}"
FLAG_IMPORT = "proj/{project|data.project}:env/{environment}:flag/{featureName|data.name}"
FLAG_TAG_IMPORT = "proj/{project}:env/{environment}:flag/{featureName|data.featureName}"
PROJ = "proj/{project|data.id|preData.id}"
ENV = "proj/{project}:env/{environment|data.name|preData.name}"
SEGMENT = "proj/{project|data.project|preData.project}:env/*:segment/" + _NAME_OR_ID
STRATEGY = "strategy/{data.name|preData.name}"
CONTEXT_FIELD = "context-field/{data.name|preData.name}"
TAG = "tag/{data.value|preData.value}"
TAG_TYPE = "tag-type/{data.name|preData.name}"
INTEGRATION = "integration/{data.provider|preData.provider}"
MEMBER = "member/" + _first(
    "data.email", "data.username", "preData.email", "preData.username",
    "data.name", "preData.name", "data.id", "preData.id",
)  # fmt: skip
SELF = "member/{data.email|data.username|createdBy}"
TOKEN = "member/{createdBy}:token/{data.description|preData.description|data.id|preData.id}"
SERVICE_TOKEN = "service-token/" + _first(
    "data.tokenName", "preData.tokenName", "data.description", "preData.description",
    "data.id", "preData.id",
)  # fmt: skip
SERVICE_ACCOUNT = "service-account/" + _first(
    "data.username", "preData.username", "data.name", "preData.name", "data.id", "preData.id"
)
SIGNUP = "public-signup-token/{data.name|preData.name}"
TEAM = "team/" + _NAME_OR_ID
ROLE = "role/" + _NAME_OR_ID
SETTING = "setting/{data.id|preData.id|data.name|preData.name}"
BANNER = "banner/{data.id|preData.id}"
APPLICATION = "application/{data.appName|preData.appName}"
CHANGE = "proj/{project}:env/{environment}:change-request/{data.changeRequestId|data.id|preData.id}"
SIGNAL = "signal-endpoint/" + _NAME_OR_ID
SIGNAL_TOKEN = (
    "signal-endpoint/{data.signalEndpointId|preData.signalEndpointId}:token/" + _NAME_OR_ID
)
ACTION_SET = "action-set/" + _NAME_OR_ID
PIPELINE = "proj/*:release-pipeline/" + _NAME_OR_ID
METRIC = "proj/{project|data.project}:metric/" + _first(
    "data.metricName", "preData.metricName", "data.name", "preData.name", "data.id", "preData.id"
)

# fmt: off
_ROWS: tuple[tuple[str, str, str, str], ...] = (
    # (Unleash type, resource template, action names separated by spaces, title verb)
    ("application-created", APPLICATION, "createApplication", "created the application"),
    ("feature-created", FLAG, "createFlag", "created the flag"),
    ("feature-deleted", FLAG, "deleteFlag", "deleted the flag"),
    ("feature-updated", FLAG, "updateFlag", "updated the flag"),
    ("feature-metadata-updated", FLAG, "updateDescription updateTemporary updateTrackEvents",
     "updated the metadata of the flag"),
    ("feature-variants-updated", FLAG, "updateFlagVariations", "updated the variants of the flag"),
    ("feature-environment-variants-updated", FLAG, "updateFlagVariations",
     "updated the environment variants of the flag"),
    ("feature-project-change", FLAG, "updateFlagProject", "moved to another project the flag"),
    ("feature-archived", FLAG, "updateGlobalArchived", "archived the flag"),
    ("feature-revived", FLAG, "updateGlobalArchived", "revived the flag"),
    ("feature-import", FLAG_IMPORT, "createFlag", "imported the flag"),
    ("feature-tagged", FLAG, "updateTags", "tagged the flag"),
    ("feature-tag-import", FLAG_TAG_IMPORT, "updateTags", "imported the tags of the flag"),
    ("feature-strategy-update", FLAG, "updateRules", "updated a strategy of the flag"),
    ("feature-strategy-add", FLAG, "updateRules", "added a strategy to the flag"),
    ("feature-strategy-remove", FLAG, "updateRules", "removed a strategy from the flag"),
    ("feature-type-updated", FLAG, "updateTemporary", "changed the type of the flag"),
    ("feature-completed", FLAG, "updateDeprecated", "marked as completed the flag"),
    ("feature-uncompleted", FLAG, "updateDeprecated", "marked as not completed the flag"),
    ("feature-link-added", FLAG, "createFlagLink", "added a link to the flag"),
    ("feature-link-removed", FLAG, "deleteFlagLink", "removed a link from the flag"),
    ("feature-link-updated", FLAG, "updateFlagLink", "updated a link of the flag"),
    ("strategy-order-changed", FLAG, "updateRules", "reordered the strategies of the flag"),
    ("drop-feature-tags", "proj/*:env/*:flag/*", "updateTags", "dropped the tags of every flag"),
    ("feature-untagged", FLAG, "updateTags", "untagged the flag"),
    ("feature-stale-on", FLAG, "updateStale", "marked as stale the flag"),
    ("feature-stale-off", FLAG, "updateStale", "marked as not stale the flag"),
    ("drop-features", "proj/*:env/*:flag/*", "deleteFlag", "dropped every flag"),
    ("feature-environment-enabled", FLAG, "updateOn", "turned on the flag"),
    ("feature-environment-disabled", FLAG, "updateOn", "turned off the flag"),
    ("strategy-created", STRATEGY, "createStrategy", "created the strategy"),
    ("strategy-deleted", STRATEGY, "deleteStrategy", "deleted the strategy"),
    ("strategy-deprecated", STRATEGY, "deprecateStrategy", "deprecated the strategy"),
    ("strategy-reactivated", STRATEGY, "reactivateStrategy", "reactivated the strategy"),
    ("strategy-updated", STRATEGY, "updateStrategy", "updated the strategy"),
    ("strategy-import", STRATEGY, "createStrategy", "imported the strategy"),
    ("drop-strategies", "strategy/*", "deleteStrategy", "dropped every strategy"),
    ("context-field-created", CONTEXT_FIELD, "createContextField", "created the context field"),
    ("context-field-updated", CONTEXT_FIELD, "updateContextField", "updated the context field"),
    ("context-field-deleted", CONTEXT_FIELD, "deleteContextField", "deleted the context field"),
    ("project-access-added", PROJ, "updateProjectAccess", "granted access to the project"),
    ("project-access-user-roles-updated", PROJ, "updateProjectAccess",
     "updated user roles in the project"),
    ("project-access-group-roles-updated", PROJ, "updateProjectAccess",
     "updated group roles in the project"),
    ("project-access-user-roles-deleted", PROJ, "updateProjectAccess",
     "removed user roles from the project"),
    ("project-access-group-roles-deleted", PROJ, "updateProjectAccess",
     "removed group roles from the project"),
    ("project-access-updated", PROJ, "updateProjectAccess", "updated access to the project"),
    ("project-created", PROJ, "createProject", "created the project"),
    ("project-updated", PROJ, "updateProjectName", "updated the project"),
    ("project-deleted", PROJ, "deleteProject", "deleted the project"),
    ("project-archived", PROJ, "archiveProject", "archived the project"),
    ("project-revived", PROJ, "reviveProject", "revived the project"),
    ("project-import", PROJ, "createProject", "imported the project"),
    ("project-user-added", PROJ, "updateProjectAccess", "added a user to the project"),
    ("project-user-removed", PROJ, "updateProjectAccess", "removed a user from the project"),
    ("project-user-role-changed", PROJ, "updateProjectAccess",
     "changed a user's role in the project"),
    ("project-group-added", PROJ, "updateProjectAccess", "added a group to the project"),
    ("role-created", ROLE, "createRole", "created the role"),
    ("role-updated", ROLE, "updatePolicy updateName updateDescription", "updated the role"),
    ("role-deleted", ROLE, "deleteRole", "deleted the role"),
    ("drop-projects", "proj/*", "deleteProject", "dropped every project"),
    ("tag-created", TAG, "createTag", "created the tag"),
    ("tag-deleted", TAG, "deleteTag", "deleted the tag"),
    ("tag-import", TAG, "createTag", "imported the tag"),
    ("drop-tags", "tag/*", "deleteTag", "dropped every tag"),
    ("tag-type-created", TAG_TYPE, "createTagType", "created the tag type"),
    ("tag-type-deleted", TAG_TYPE, "deleteTagType", "deleted the tag type"),
    ("tag-type-updated", TAG_TYPE, "updateTagType", "updated the tag type"),
    ("tag-type-import", TAG_TYPE, "createTagType", "imported the tag type"),
    ("drop-tag-types", "tag-type/*", "deleteTagType", "dropped every tag type"),
    ("addon-config-created", INTEGRATION, "createIntegration", "created the integration"),
    ("addon-config-updated", INTEGRATION, "updateConfiguration", "updated the integration"),
    ("addon-config-deleted", INTEGRATION, "deleteIntegration", "deleted the integration"),
    ("db-pool-update", "acct", "updateDbPool", "updated the database pool of the account"),
    ("user-created", MEMBER, "createMember", "created the member"),
    ("user-updated", MEMBER, "updateMember", "updated the member"),
    ("user-deleted", MEMBER, "deleteMember", "deleted the member"),
    ("drop-environments", "proj/*:env/*", "deleteEnvironment", "dropped every environment"),
    ("environment-import", ENV, "createEnvironment", "imported the environment"),
    ("environment-created", ENV, "createEnvironment", "created the environment"),
    ("environment-updated", ENV, "updateName", "updated the environment"),
    ("environment-deleted", ENV, "deleteEnvironment", "deleted the environment"),
    ("segment-created", SEGMENT, "createSegment", "created the segment"),
    ("segment-updated", SEGMENT, "updateRules updateName updateDescription",
     "updated the segment"),
    ("segment-deleted", SEGMENT, "deleteSegment", "deleted the segment"),
    ("group-created", TEAM, "createTeam", "created the team"),
    ("group-updated", TEAM,
     "updateTeamName updateTeamDescription updateTeamMembers updateTeamCustomRoles",
     "updated the team"),
    ("group-deleted", TEAM, "deleteTeam", "deleted the team"),
    ("group-user-added", TEAM, "updateTeamMembers", "added a member to the team"),
    ("group-user-removed", TEAM, "updateTeamMembers", "removed a member from the team"),
    ("setting-created", SETTING, "createSetting", "created the setting"),
    ("setting-updated", SETTING, "updateSetting", "updated the setting"),
    ("setting-deleted", SETTING, "deleteSetting", "deleted the setting"),
    ("client-metrics", APPLICATION, "reportClientMetrics", "reported metrics of the application"),
    ("client-register", APPLICATION, "registerClient", "registered a client of the application"),
    ("pat-created", TOKEN, "createAccessToken", "created the personal access token"),
    ("pat-deleted", TOKEN, "deleteAccessToken", "deleted the personal access token"),
    ("service-account-token-created", SERVICE_TOKEN, "createAccessToken",
     "created the service account token"),
    ("service-account-token-deleted", SERVICE_TOKEN, "deleteAccessToken",
     "deleted the service account token"),
    ("public-signup-token-created", SIGNUP, "createSignupToken", "created the invite link"),
    ("public-signup-token-user-added", SIGNUP, "addSignupTokenUser",
     "signed up a user with the invite link"),
    ("public-signup-token-updated", SIGNUP, "updateSignupToken", "updated the invite link"),
    ("change-request-created", CHANGE, "createApprovalRequest", "created the change request"),
    ("change-request-discarded", CHANGE, "deleteApprovalRequest", "discarded the change request"),
    ("change-added", CHANGE, "updateApprovalRequest", "added a change to the change request"),
    ("change-discarded", CHANGE, "updateApprovalRequest",
     "discarded a change of the change request"),
    ("change-edited", CHANGE, "updateApprovalRequest", "edited a change of the change request"),
    ("change-request-rejected", CHANGE, "reviewApprovalRequest", "rejected the change request"),
    ("change-request-approved", CHANGE, "reviewApprovalRequest", "approved the change request"),
    ("change-request-approval-added", CHANGE, "reviewApprovalRequest",
     "added an approval to the change request"),
    ("change-request-cancelled", CHANGE, "deleteApprovalRequest", "cancelled the change request"),
    ("change-request-sent-to-review", CHANGE, "updateApprovalRequest",
     "sent to review the change request"),
    ("change-request-schedule-suspended", CHANGE, "updateApprovalRequest",
     "suspended the schedule of the change request"),
    ("change-request-applied", CHANGE, "applyApprovalRequest", "applied the change request"),
    ("change-request-scheduled", CHANGE, "updateApprovalRequest", "scheduled the change request"),
    ("change-request-scheduled-application-success", CHANGE, "applyApprovalRequest",
     "applied on schedule the change request"),
    ("change-request-scheduled-application-failure", CHANGE, "applyApprovalRequest",
     "failed to apply on schedule the change request"),
    ("change-request-configuration-updated", ENV, "updateApprovalSettings",
     "updated the change request settings of the environment"),
    ("api-token-created", SERVICE_TOKEN, "createAccessToken", "created the API token"),
    ("api-token-updated", SERVICE_TOKEN, "updateAccessTokenExpiry", "updated the API token"),
    ("api-token-deleted", SERVICE_TOKEN, "deleteAccessToken", "deleted the API token"),
    ("feature-favorited", FLAG, "favoriteFlag", "added to favorites the flag"),
    ("feature-unfavorited", FLAG, "unfavoriteFlag", "removed from favorites the flag"),
    ("project-favorited", PROJ, "favoriteProject", "added to favorites the project"),
    ("project-unfavorited", PROJ, "unfavoriteProject", "removed from favorites the project"),
    ("features-exported", FLAG, "exportFlags", "exported the flags"),
    ("features-imported", FLAG, "importFlags", "imported the flags"),
    ("service-account-created", SERVICE_ACCOUNT, "createServiceAccount",
     "created the service account"),
    ("service-account-deleted", SERVICE_ACCOUNT, "deleteServiceAccount",
     "deleted the service account"),
    ("service-account-updated", SERVICE_ACCOUNT, "updateServiceAccount",
     "updated the service account"),
    ("feature-potentially-stale-on", FLAG, "updateStale", "marked as potentially stale the flag"),
    ("feature-dependency-added", FLAG, "updatePrerequisites", "added a dependency to the flag"),
    ("feature-dependency-removed", FLAG, "updatePrerequisites",
     "removed a dependency from the flag"),
    ("feature-dependencies-removed", FLAG, "updatePrerequisites",
     "removed every dependency from the flag"),
    ("banner-created", BANNER, "createBanner", "created the banner"),
    ("banner-updated", BANNER, "updateBanner", "updated the banner"),
    ("banner-deleted", BANNER, "deleteBanner", "deleted the banner"),
    ("safeguard-changed", FLAG, "updateMeasuredRolloutConfiguration",
     "changed a safeguard of the flag"),
    ("safeguard-deleted", FLAG, "updateMeasuredRolloutConfiguration",
     "deleted a safeguard of the flag"),
    ("safeguard-triggered", FLAG, "triggerSafeguard", "triggered a safeguard of the flag"),
    ("release-plan-progressions-resumed", FLAG, "resumeReleaseProgressions",
     "resumed the release plan of the flag"),
    ("release-plan-progressions-paused", FLAG, "pauseReleaseProgressions",
     "paused the release plan of the flag"),
    ("project-environment-added", ENV, "createEnvironment", "added to the project the environment"),
    ("project-environment-removed", ENV, "deleteEnvironment",
     "removed from the project the environment"),
    ("default-strategy-updated", ENV, "updateDefaultStrategy",
     "updated the default strategy of the environment"),
    ("segment-import", SEGMENT, "createSegment", "imported the segment"),
    ("signal-endpoint-created", SIGNAL, "createSignalEndpoint", "created the signal endpoint"),
    ("signal-endpoint-updated", SIGNAL, "updateSignalEndpoint", "updated the signal endpoint"),
    ("signal-endpoint-deleted", SIGNAL, "deleteSignalEndpoint", "deleted the signal endpoint"),
    ("signal-endpoint-token-created", SIGNAL_TOKEN, "createSignalEndpointToken",
     "created the signal endpoint token"),
    ("signal-endpoint-token-updated", SIGNAL_TOKEN, "updateSignalEndpointToken",
     "updated the signal endpoint token"),
    ("signal-endpoint-token-deleted", SIGNAL_TOKEN, "deleteSignalEndpointToken",
     "deleted the signal endpoint token"),
    ("actions-created", ACTION_SET, "createActionSet", "created the action set"),
    ("actions-updated", ACTION_SET, "updateActionSet", "updated the action set"),
    ("actions-deleted", ACTION_SET, "deleteActionSet", "deleted the action set"),
    ("release-plan-template-created", PIPELINE, "createReleasePipeline",
     "created the release template"),
    ("release-plan-template-updated", PIPELINE,
     "updateReleasePipelineName updateReleasePipelineDescription updateReleasePipelinePhase",
     "updated the release template"),
    ("release-plan-template-deleted", PIPELINE, "deleteReleasePipeline",
     "deleted the release template"),
    ("release-plan-template-archived", PIPELINE, "archiveReleasePipeline",
     "archived the release template"),
    ("release-plan-added", FLAG, "addReleasePipeline", "added a release plan to the flag"),
    ("release-plan-removed", FLAG, "removeReleasePipeline",
     "removed the release plan from the flag"),
    ("release-plan-milestone-started", FLAG, "updateReleasePhaseStatus",
     "started a release milestone of the flag"),
    ("milestone-progression-created", FLAG, "createMilestoneProgression",
     "created a milestone progression of the flag"),
    ("milestone-progression-updated", FLAG, "updateMilestoneProgression",
     "updated a milestone progression of the flag"),
    ("milestone-progression-deleted", FLAG, "deleteMilestoneProgression",
     "deleted a milestone progression of the flag"),
    ("milestone-progression-changed", FLAG, "updateMilestoneProgression",
     "changed a milestone progression of the flag"),
    ("user-preference-updated", SELF, "updateMemberPreferences",
     "updated the preferences of the member"),
    ("scim-users-deleted", "member/*", "deleteMember", "deleted through SCIM the members"),
    ("scim-groups-deleted", "team/*", "deleteTeam", "deleted through SCIM the teams"),
    ("cdn-token-created", SERVICE_TOKEN, "createAccessToken", "created the CDN token"),
    ("change-request-requested-approvers-updated", CHANGE, "updateApprovalRequest",
     "updated the requested approvers of the change request"),
    ("impact-metric-created", METRIC, "createMetric", "created the impact metric"),
    ("impact-metric-updated", METRIC, "updateMetric", "updated the impact metric"),
    ("impact-metric-deleted", METRIC, "deleteMetric", "deleted the impact metric"),
    ("user-access-request-registered", SELF, "requestMemberAccess",
     "requested access for the member"),
    ("user-access-request-approved", MEMBER, "approveMemberAccess",
     "approved the access request of the member"),
    ("user-access-request-rejected", MEMBER, "rejectMemberAccess",
     "rejected the access request of the member"),
    ("remote-mcp-server-settings-updated", "setting/remote-mcp-server", "updateSetting",
     "updated the setting"),
)
# fmt: on

UNLEASH_EVENT_TYPES: Mapping[str, EventType] = MappingProxyType(
    {
        name: EventType(name, resource, tuple(actions.split()), verb)
        for name, resource, actions, verb in _ROWS
    }
)

# relay's own events about its subscriptions and deliveries (docs/delivery.md, "Operational
# events"): the subject is the subscription, `integration/<integration key>/<id>`, and the
# action is the event's type, so `{"resources": ["integration/*"], "actions":
# ["delivery-dead"]}` selects them
RELAY_SUBSCRIPTION = "integration/{data.subscription}"
RELAY_SOURCE = "relay"  # their `source`; no producer may use it (relay/store/sources.py)
_RELAY_ROWS = (
    ("subscription-disabled", "turned off the subscription"),
    ("subscription-failing", "saw deliveries fail for the subscription"),
    ("subscription-recovered", "saw deliveries succeed again for the subscription"),
    ("subscription-paused", "paused the subscription at its receiver's request"),
    ("delivery-dead", "gave up a delivery of the subscription"),
)
RELAY_EVENT_TYPES: Mapping[str, EventType] = MappingProxyType(
    {name: EventType(name, RELAY_SUBSCRIPTION, (name,), verb) for name, verb in _RELAY_ROWS}
)
