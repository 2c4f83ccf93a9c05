"""Device message envelope and each sector's payload (docs/device-protocol.md).

One message = one device reading at one instant. The envelope is the same for every sector; `metrics` and
`events` are typed per sector, so a wrong metric or event name for the claimed sector is a validation error.
Physical ranges are declared here with `Field(ge=, le=)`: a value outside them is a sensor fault, never a reading.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

DeviceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
EnterpriseId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class MessageContext(BaseModel):
    """Conditions that make an alarm worse (DOMAIN.md §3 context rule)."""

    model_config = _STRICT
    related_offline: bool = False  # related data or video (JT/T 1078) is offline
    isolated: bool = False  # the alarm system or a loop is isolated / bypassed
    manual_mode: bool = False  # the control system runs in manual
    pouring: bool = False  # construction: a concrete pour is in progress on the formwork
    operating: bool = True  # construction: the crane is working


class _Envelope(BaseModel):
    model_config = _STRICT
    device_id: DeviceId
    enterprise_id: EnterpriseId
    ts: AwareDatetime
    seq: Annotated[int, Field(ge=0, le=2**53)] | None = None
    msg_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    context: MessageContext | None = None


# --- road transport (JT/T 808 position report + DSM alarms) -------------------------------------------------

RoadClass = Literal["expressway", "urban_expressway", "other"]


class RoadTransportMetrics(BaseModel):
    model_config = _STRICT
    speed_kmh: Annotated[float, Field(ge=0, le=220)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    road_limit_kmh: Annotated[float, Field(gt=0, le=150)] | None = None
    road_class: RoadClass | None = None
    in_restricted_zone: bool | None = None  # geofence or restricted-time flag from the platform's map match


class DsmEvent(BaseModel):
    """Driver-state monitoring alarm (JT/T 1078 / Su-standard ADAS-DSM)."""

    model_config = _STRICT
    code: Literal["fatigue", "phone", "smoking", "distraction", "abnormal_driver"]
    level: Literal[1, 2] = 1


class RoadTransportMessage(_Envelope):
    sector: Literal["road_transport"]
    metrics: RoadTransportMetrics = RoadTransportMetrics()
    events: tuple[DsmEvent, ...] = ()


# --- hazardous chemicals (gas detectors, tank gauges) -------------------------------------------------------


class HazchemMetrics(BaseModel):
    model_config = _STRICT
    gas_lel_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    toxic_ppm: Annotated[float, Field(ge=0, le=10000)] | None = None
    o2_pct_vol: Annotated[float, Field(ge=0, le=30)] | None = None
    level_pct: Annotated[float, Field(ge=-5, le=110)] | None = None
    temperature_c: Annotated[float, Field(ge=-200, le=1200)] | None = None
    pressure_kpa: Annotated[float, Field(ge=-101.3, le=50000)] | None = None
    interlock_ok: bool | None = None  # False: the SIS interlock did not act (or is bypassed)


class HazchemEvent(BaseModel):
    model_config = _STRICT
    code: Literal["detector_fault"]


class HazchemMessage(_Envelope):
    sector: Literal["hazchem"]
    metrics: HazchemMetrics = HazchemMetrics()
    events: tuple[HazchemEvent, ...] = ()


# --- fire-safety key units (fire alarm controller, water pressure) ------------------------------------------


class FireMetrics(BaseModel):
    model_config = _STRICT
    static_pressure_mpa: Annotated[float, Field(ge=0, le=3)] | None = None


class FireEvent(BaseModel):
    """Fire alarm controller event (GB 26875 transmission)."""

    model_config = _STRICT
    code: Literal[
        "fault",
        "isolated",
        "supervisory",
        "fire_alarm",
        "fire_confirmed",
        "reset",
        "sprinkler_flow",
        "pressure_switch",
    ]
    zone: Annotated[str, Field(max_length=32)] | None = None
    point: Annotated[str, Field(max_length=32)] | None = None


class FireMessage(_Envelope):
    sector: Literal["fire"]
    metrics: FireMetrics = FireMetrics()
    events: tuple[FireEvent, ...] = ()


# --- construction sites (tower cranes, pits, high formwork) -------------------------------------------------


class ConstructionMetrics(BaseModel):
    model_config = _STRICT
    load_pct: Annotated[float, Field(ge=0, le=300)] | None = None
    moment_pct: Annotated[float, Field(ge=0, le=300)] | None = None
    wind_ms: Annotated[float, Field(ge=0, le=80)] | None = None
    limiter_bypassed: bool | None = None
    cumulative_mm: Annotated[float, Field(ge=-2000, le=2000)] | None = None
    rate_mm_d: Annotated[float, Field(ge=-500, le=500)] | None = None
    axial_force_kn: Annotated[float, Field(ge=-5000, le=5000)] | None = None
    tilt_permille: Annotated[float, Field(ge=-100, le=100)] | None = None


class ConstructionEvent(BaseModel):
    """GB 50497-2019 §8.0.9 immediate-danger conditions, reported by the monitoring contractor."""

    model_config = _STRICT
    code: Literal["piping", "heave", "collapse", "strut_break", "neighbour_crack"]


class ConstructionMessage(_Envelope):
    sector: Literal["construction"]
    metrics: ConstructionMetrics = ConstructionMetrics()
    events: tuple[ConstructionEvent, ...] = ()


# --- pipelines (hazardous-chemical and long-distance oil/gas) -----------------------------------------------


class PipelineMetrics(BaseModel):
    model_config = _STRICT
    pressure_mpa: Annotated[float, Field(ge=0, le=40)] | None = None
    flow_m3h: Annotated[float, Field(ge=0, le=100000)] | None = None
    gas_lel_pct: Annotated[float, Field(ge=0, le=100)] | None = None


ThirdPartyKind = Literal[
    "blasting", "excavation", "works", "machinery", "digging", "drilling", "intrusion", "damage"
]


class PipelineEvent(BaseModel):
    """Third-party activity (fibre-optic vibration, video, patrol) or leak detection."""

    model_config = _STRICT
    code: Literal["third_party", "npw_leak", "mass_balance_leak"]
    kind: ThirdPartyKind | None = None
    distance_m: Annotated[float, Field(ge=0, le=5000)] | None = None
    permit: bool = False


class ChemPipelineMessage(_Envelope):
    sector: Literal["chem_pipeline"]
    metrics: PipelineMetrics = PipelineMetrics()
    events: tuple[PipelineEvent, ...] = ()


class OilGasPipelineMessage(_Envelope):
    sector: Literal["oil_gas_pipeline"]
    metrics: PipelineMetrics = PipelineMetrics()
    events: tuple[PipelineEvent, ...] = ()


DeviceMessage = Annotated[
    Union[
        RoadTransportMessage,
        HazchemMessage,
        FireMessage,
        ConstructionMessage,
        ChemPipelineMessage,
        OilGasPipelineMessage,
    ],
    Field(discriminator="sector"),
]
AnyMessage = Union[
    RoadTransportMessage,
    HazchemMessage,
    FireMessage,
    ConstructionMessage,
    ChemPipelineMessage,
    OilGasPipelineMessage,
]
MESSAGE_ADAPTER: TypeAdapter[AnyMessage] = TypeAdapter(DeviceMessage)
