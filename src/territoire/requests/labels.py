"""Human labels of statuses and channels, French first (the interface's default language)."""

from __future__ import annotations

from territoire.requests.models import Channel, Status

STATUS_LABELS: dict[str, dict[Status, str]] = {
    "fr": {
        Status.OPEN: "Ouvert",
        Status.INVESTIGATING: "En cours d'examen",
        Status.IN_PROGRESS: "Intervention en cours",
        Status.ACTION_SCHEDULED: "Intervention programmée",
        Status.FIXED: "Résolu",
        Status.CLOSED: "Clos",
        Status.DUPLICATE: "Doublon",
        Status.NOT_RESPONSIBLE: "Hors compétence",
        Status.NO_FURTHER_ACTION: "Sans suite",
        Status.INTERNAL_REFERRAL: "Transmis à un autre service",
        Status.REOPENED: "Rouvert",
    },
    "en": {
        Status.OPEN: "Open",
        Status.INVESTIGATING: "Investigating",
        Status.IN_PROGRESS: "In progress",
        Status.ACTION_SCHEDULED: "Action scheduled",
        Status.FIXED: "Fixed",
        Status.CLOSED: "Closed",
        Status.DUPLICATE: "Duplicate",
        Status.NOT_RESPONSIBLE: "Not our responsibility",
        Status.NO_FURTHER_ACTION: "No further action",
        Status.INTERNAL_REFERRAL: "Internal referral",
        Status.REOPENED: "Reopened",
    },
}

CHANNEL_LABELS: dict[str, dict[Channel, str]] = {
    "fr": {
        Channel.WEB: "Site web",
        Channel.OPEN311: "Application (Open311)",
        Channel.PHONE: "Téléphone",
        Channel.DESK: "Accueil",
        Channel.MAIL: "Courrier",
        Channel.SOCIAL: "Réseaux sociaux",
    },
    "en": {
        Channel.WEB: "Website",
        Channel.OPEN311: "App (Open311)",
        Channel.PHONE: "Phone",
        Channel.DESK: "Front desk",
        Channel.MAIL: "Letter",
        Channel.SOCIAL: "Social media",
    },
}


def status_label(status: Status, language: str = "fr") -> str:
    return STATUS_LABELS.get(language, STATUS_LABELS["fr"])[status]


def channel_label(channel: Channel, language: str = "fr") -> str:
    return CHANNEL_LABELS.get(language, CHANNEL_LABELS["fr"])[channel]
