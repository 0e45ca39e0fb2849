"""Demo data: the categories, routing, answer templates and a few requests of the demo
intercommunality. Called by the demo seeding (`seed_demo_requests(session, tenant_id)`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from territoire.requests import catalogue, service
from territoire.requests.models import Channel, Status, UpdateSource

EMERGENCY = "En cas de danger immédiat, appelez le 112 (ou le 18)."
CATEGORIES: list[dict[str, Any]] = [
    {
        "code": "eclairage",
        "name": "Éclairage public",
        "group": "Voirie et éclairage",
        "keywords": "lampadaire, candélabre, rue sombre, lampe",
        "description": "Lampadaire éteint, qui clignote ou reste allumé le jour.",
        "notice": EMERGENCY + " Un câble arraché : ne vous approchez pas.",
        "service_notice": "L'équipe éclairage intervient en général sous 5 jours ouvrés.",
        "duplicate_radius_m": 60,
        "attributes": [
            {
                "code": "etat",
                "datatype": "singlevaluelist",
                "required": True,
                "description": "Le lampadaire est…",
                "values": [
                    {"key": "eteint", "name": "éteint"},
                    {"key": "clignote", "name": "clignotant"},
                    {"key": "jour", "name": "allumé en journée"},
                    {"key": "endommage", "name": "endommagé"},
                ],
            }
        ],
    },
    {
        "code": "voirie-nid-de-poule",
        "name": "Voirie : nid-de-poule",
        "group": "Voirie et éclairage",
        "keywords": "trou, chaussée, route, trottoir",
        "description": "Trou ou affaissement de la chaussée ou du trottoir.",
        "notice": EMERGENCY,
        "service_notice": "Le trou sera signalé puis rebouché par les services techniques.",
        "duplicate_radius_m": 80,
    },
    {
        "code": "proprete-depot-sauvage",
        "name": "Propreté : dépôt sauvage",
        "group": "Propreté",
        "keywords": "déchets, encombrants, gravats",
        "description": "Déchets abandonnés sur la voie publique ou dans la nature.",
        "service_notice": "Enlèvement sous 72 heures ; une enquête peut être ouverte.",
        "duplicate_radius_m": 50,
        "attributes": [
            {
                "code": "objets",
                "datatype": "multivaluelist",
                "required": False,
                "description": "Qu'est-ce qui a été déposé ?",
                "values": [
                    {"key": "encombrants", "name": "encombrants, meubles"},
                    {"key": "gravats", "name": "gravats"},
                    {"key": "sacs", "name": "sacs d'ordures"},
                    {"key": "dangereux", "name": "produits dangereux"},
                ],
            }
        ],
    },
    {
        "code": "conteneur-plein",
        "name": "Conteneur plein",
        "group": "Propreté",
        "keywords": "poubelle, colonne, verre, tri",
        "description": "Colonne de tri ou bac collectif qui déborde.",
        "service_notice": "La collecte est avancée si le conteneur est plein.",
        "duplicate_radius_m": 30,
    },
    {
        "code": "mobilier-urbain",
        "name": "Mobilier urbain",
        "group": "Espaces publics",
        "keywords": "banc, barrière, panneau, abribus",
        "description": "Banc, barrière, panneau ou abribus cassé.",
        "service_notice": "Le mobilier sera sécurisé puis réparé ou remplacé.",
        "duplicate_radius_m": 40,
    },
]
ROUTING = [
    (None, "Accueil de la communauté de communes"),
    ("eclairage", "Service éclairage public"),
    ("voirie-nid-de-poule", "Services techniques — voirie"),
    ("proprete-depot-sauvage", "Service propreté"),
    ("conteneur-plein", "Service déchets"),
]
TEMPLATES = [
    (
        "Pris en compte",
        "Merci pour votre signalement : il a été transmis au service concerné.",
        Status.INVESTIGATING,
    ),
    (
        "Intervention programmée",
        "Une intervention est programmée dans les prochains jours.",
        Status.ACTION_SCHEDULED,
    ),
    (
        "Hors compétence",
        "Ce problème relève d'un autre gestionnaire (département, "
        "opérateur de réseau) : nous lui avons transmis votre signalement.",
        Status.NOT_RESPONSIBLE,
    ),
]
# (category, lon, lat, address, description, channel, final status, answer)
SAMPLES: list[tuple[str, float, float, str, str, Channel, Status | None, str]] = [
    (
        "eclairage",
        5.5062,
        47.0481,
        "Rue 1 (39901), Clairval",
        "Trois lampadaires éteints d'affilée, la rue est très sombre le soir.",
        Channel.WEB,
        Status.ACTION_SCHEDULED,
        "Une intervention est programmée jeudi.",
    ),
    (
        "voirie-nid-de-poule",
        5.5121,
        47.0524,
        "Rue 2 (39901), Clairval",
        "Nid-de-poule profond devant l'école, dangereux pour les vélos.",
        Channel.PHONE,
        Status.FIXED,
        "Le trou a été rebouché. Merci !",
    ),
    (
        "proprete-depot-sauvage",
        5.4371,
        47.0466,
        "Rue 1 (39902), Montfleury",
        "Gravats et vieux meubles déposés au bord du chemin.",
        Channel.OPEN311,
        Status.INVESTIGATING,
        "Le service propreté va constater sur place.",
    ),
    (
        "conteneur-plein",
        5.5856,
        47.0552,
        "Rue 2 (39903), Les Essarts-sur-Lanterne",
        "La colonne à verre déborde depuis le week-end.",
        Channel.DESK,
        None,
        "",
    ),
    (
        "mobilier-urbain",
        5.5093,
        47.0497,
        "Place de la mairie, Clairval",
        "Un banc a une planche cassée.",
        Channel.WEB,
        None,
        "",
    ),
]


def _ensure_catalogue(session: Session, tenant_id: int) -> None:
    for raw in CATEGORIES:
        if catalogue.find_category(session, tenant_id, raw["code"]) is None:
            catalogue.create_category(session, tenant_id, catalogue.CategoryDraft(**raw))
    if not catalogue.list_routing(session, tenant_id):
        catalogue.replace_routing(
            session,
            tenant_id,
            [catalogue.RoutingDraft(code, None, None, agency=agency) for code, agency in ROUTING],
        )
    titles = {t.title for t in catalogue.list_templates(session, tenant_id)}
    for title, body, status in TEMPLATES:
        if title not in titles:
            catalogue.create_template(session, tenant_id, title=title, body=body, status=status)


def seed_demo_requests(session: Session, tenant_id: int) -> int:
    """Idempotent: categories and templates are added when missing, sample requests only
    when the tenant has none. Returns the number of requests added."""
    _ensure_catalogue(session, tenant_id)
    if service.list_requests(session, tenant_id, service.RequestFilter(), limit=1).total:
        return 0
    agent = service.Actor(UpdateSource.AGENT)
    for code, lon, lat, address, text, channel, status, answer in SAMPLES:
        answers: dict[str, str | list[str]] = {"etat": "eteint"} if code == "eclairage" else {}
        created = service.create_request(
            session,
            tenant_id,
            service.RequestDraft(
                category_code=code,
                description=text,
                lat=lat,
                lon=lon,
                address=address,
                attributes=answers,
                channel=channel,
            ),
            actor=service.Actor(UpdateSource.CITIZEN),
        )
        if status is not None:
            service.add_update(
                session,
                tenant_id,
                created.code,
                status=status,
                note=answer,
                public=True,
                actor=agent,
            )
    return len(SAMPLES)
