"""Weather covariates of the demand forecast (the bench's simulation, shortened)."""
from bench.weather_forecast import run
from app.services.weather_effect import WeatherEffect


def test_weather_covariates_lower_the_forecast_error_on_weather_driven_demand():
    result = run(days=16, seed=3)
    assert result["mape_with"] < result["mape_without"]
    # Rain lowers demand. (Heat's share is mostly followed by the level and the
    # daily profile already, so its coefficient is small and not asserted.)
    assert result["learned"][1] < 0


def test_no_weather_no_adjustment():
    effect = WeatherEffect()
    assert effect.factor("Z1", 1_700_000_000) == 1.0
    effect.observe_weather([(1_700_002_800, 35.0, 0.0)])
    assert effect.factor("Z1", 1_700_000_000) == 1.0     # nothing learned yet
